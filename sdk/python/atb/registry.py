"""The plugin registry, by the C++ registry's rules (sdk/src/registry.cpp), with the same messages:
directories in order, then those of $ATB_PLUGIN_PATH; within one, *.so regular files in name order;
the first plugin of a backend name wins.  Problems never stop a scan: each becomes a Diagnostic.
tests/test_registry.py runs both registries over the same directories and compares what they say."""

import os
from dataclasses import dataclass

from .errors import AtbError, InvalidArgumentError
from .log_bridge import logger
from .plugin import Plugin

PLUGIN_PATH_ENV = "ATB_PLUGIN_PATH"


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # "debug" or "warning"
    path: str
    message: str


def split_path_list(text):
    """'a:b::c' -> ['a', 'b', 'c'] (empty entries dropped)."""
    return [part for part in text.split(":") if part]


class Registry:
    def __init__(self):
        self.plugins = []
        self.diagnostics = []

    @classmethod
    def scan(cls, directories=(), include_environment=True):
        if isinstance(directories, (str, os.PathLike)):
            directories = [directories]
        every = [os.fspath(d) for d in directories]
        if include_environment:
            every += split_path_list(os.environ.get(PLUGIN_PATH_ENV, ""))
        registry = cls()
        if not every:
            registry._warn("", f"no plugin directory given (use --plugin-dir DIR or {PLUGIN_PATH_ENV})")
        for directory in every:
            registry._scan_directory(directory)
        return registry

    def _warn(self, path, message):
        self.diagnostics.append(Diagnostic("warning", path, message))
        logger.warning("%s", message)

    def _scan_directory(self, directory):
        if not os.path.exists(directory):
            return self._warn(directory, f"plugin directory '{directory}' does not exist")
        if not os.path.isdir(directory):
            return self._warn(directory, f"plugin directory '{directory}' is not a directory")
        try:
            names = os.listdir(directory)
        except OSError as failure:
            return self._warn(directory, f"plugin directory '{directory}' cannot be read: {failure.strerror}")
        for name in sorted(names):
            self._add_candidate(os.path.join(directory, name))

    def _add_candidate(self, path):
        if not path.endswith(".so") or os.path.basename(path) == ".so" or not os.path.isfile(path):
            self.diagnostics.append(Diagnostic("debug", path, "ignored: not a *.so file"))
            logger.debug("%s: ignored, not a *.so file", path)
            return
        try:
            plugin = Plugin.load(path)
        except AtbError as failure:
            self.diagnostics.append(Diagnostic("warning", path, failure.message))
            logger.warning("skipping plugin candidate: %s", failure.message)
            return
        first = next((p for p in self.plugins if p.name == plugin.name), None)
        if first is not None:
            return self._warn(path, f"backend '{plugin.name}' from {path} ignored: the same name was registered "
                                    f"first from {first.path}")
        logger.debug("registered backend '%s' %s from %s", plugin.name, plugin.info.plugin_version, path)
        self.plugins.append(plugin)

    def backend_names(self):
        return [plugin.name for plugin in self.plugins]

    def select(self, backend_name):
        """The plugin registered under `backend_name`; the error lists the names there are and what failed."""
        for plugin in self.plugins:
            if plugin.name == backend_name:
                return plugin
        message = f"no backend named '{backend_name}'; available: " + (", ".join(self.backend_names()) or "(none)")
        for diagnostic in self.diagnostics:
            if diagnostic.severity == "warning":
                message += "\n  note: " + diagnostic.message
        raise InvalidArgumentError(message)

    def describe(self):
        """What `tq list --json` prints: the backends and the skipped candidates with their reasons."""
        return {"backends": [plugin.describe() for plugin in self.plugins],
                "skipped": [{"path": d.path, "reason": d.message} for d in self.diagnostics
                            if d.severity == "warning"]}
