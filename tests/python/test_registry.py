"""The Python registry and the C++ one (`tq list --json`) over the same plugin directories say the same:
the same backends from the same files, the same candidates skipped for the same reasons."""

import json
import os
import subprocess
import tempfile
import unittest

import atb
from support import build_path


def cpp_registry(directories, environment=None):
    tq = build_path("ATB_TQ")
    command = [tq, "list", "--json"] + [arg for d in directories for arg in ("--plugin-dir", d)]
    env = dict(os.environ)
    env.pop(atb.PLUGIN_PATH_ENV, None)
    if environment is not None:
        env[atb.PLUGIN_PATH_ENV] = environment
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    return json.loads(done.stdout)


def python_registry(directories, environment=None):
    saved = os.environ.pop(atb.PLUGIN_PATH_ENV, None)
    try:
        if environment is not None:
            os.environ[atb.PLUGIN_PATH_ENV] = environment
        return atb.Registry.scan(directories).describe()
    finally:
        os.environ.pop(atb.PLUGIN_PATH_ENV, None)
        if saved is not None:
            os.environ[atb.PLUGIN_PATH_ENV] = saved


class RegistryAgreesWithTheCppRegistry(unittest.TestCase):
    def setUp(self):
        self.shipped = build_path("ATB_TEST_PLUGIN_DIR")
        self.registry_cases = build_path("ATB_TEST_REGISTRY_DIR")
        self.broken = build_path("ATB_TEST_BROKEN_DIR")

    def assert_same(self, directories, environment=None):
        cpp = cpp_registry(directories, environment)
        python = python_registry(directories, environment)
        self.assertEqual(python["backends"], cpp["backends"])
        self.assertEqual(python["skipped"], cpp["skipped"])
        return python

    def test_shipped_plugins(self):
        found = self.assert_same([self.shipped])
        self.assertEqual([b["name"] for b in found["backends"]], ["reference", "turboquant"])

    def test_every_kind_of_bad_candidate(self):
        found = self.assert_same([self.registry_cases])
        reasons = " ".join(s["reason"] for s in found["skipped"])
        for expected in ("file too short", "has no 'atb_get_api' symbol", "implements ABI 2.3",
                         "the same name was registered first"):
            self.assertIn(expected, reasons)

    def test_broken_plugins_load_like_any_other(self):
        self.assert_same([self.broken])

    def test_first_directory_wins_a_shared_name(self):
        self.assert_same([self.registry_cases, self.shipped])

    def test_missing_directories_and_files_given_as_directories(self):
        with tempfile.TemporaryDirectory() as scratch:
            a_file = os.path.join(scratch, "plain.txt")
            open(a_file, "w").close()
            found = self.assert_same([os.path.join(scratch, "absent"), a_file, self.shipped])
        self.assertEqual(len(found["skipped"]), 2)

    def test_the_environment_adds_directories_after_the_given_ones(self):
        found = self.assert_same([self.shipped], environment=f":{self.registry_cases}::")
        self.assertIn("twin", [b["name"] for b in found["backends"]])


class Selection(unittest.TestCase):
    def test_select_names_what_there_is(self):
        registry = atb.Registry.scan([build_path("ATB_TEST_PLUGIN_DIR")], include_environment=False)
        self.assertEqual(registry.select("turboquant").name, "turboquant")
        with self.assertRaises(atb.InvalidArgumentError) as raised:
            registry.select("flash")
        self.assertIn("no backend named 'flash'; available: reference, turboquant", str(raised.exception))

    def test_no_directory_at_all_is_a_warning_not_a_failure(self):
        registry = atb.Registry.scan([], include_environment=False)
        self.assertEqual(registry.plugins, [])
        self.assertIn("no plugin directory given", registry.diagnostics[0].message)

    def test_split_path_list_drops_empty_entries(self):
        self.assertEqual(atb.split_path_list("a::b:"), ["a", "b"])


if __name__ == "__main__":
    unittest.main()
