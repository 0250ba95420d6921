"""The ctypes mirror against the compiled header: every field's offset and size, every ABI size."""

import ctypes
import json
import subprocess
import unittest

from atb import abi
from support import build_path


class AbiLayout(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        dump = build_path("ATB_ABI_LAYOUT_DUMP")
        cls.header = json.loads(subprocess.run([dump], check=True, capture_output=True, text=True).stdout)

    def test_every_struct_of_the_header_is_mirrored(self):
        self.assertEqual(sorted(self.header), sorted(abi.STRUCTS))

    def test_fields_sit_where_the_compiler_puts_them(self):
        for name, struct in abi.STRUCTS.items():
            expected = self.header[name]["fields"]
            mirrored = {f[0]: [getattr(struct, f[0]).offset, getattr(struct, f[0]).size] for f in struct._fields_}
            self.assertEqual(mirrored, expected, name)

    def test_sizes_match(self):
        for name, struct in abi.STRUCTS.items():
            self.assertEqual(struct.abi_size(), self.header[name]["abi_size"], name)
            self.assertEqual(ctypes.sizeof(struct), self.header[name]["sizeof"], name)

    def test_minimum_sizes_follow_the_header(self):
        fields = self.header["atb_forward_args"]["fields"]
        self.assertEqual(abi.FORWARD_ARGS_MIN_STRUCT_SIZE, sum(fields["block_table_stride"]))
        self.assertEqual(abi.LAYER_SPEC_MIN_STRUCT_SIZE, sum(self.header["atb_layer_spec"]["fields"]["num_layers"]))
        self.assertEqual(abi.TENSOR_MIN_STRUCT_SIZE, sum(self.header["atb_tensor"]["fields"]["strides"]))
        self.assertEqual(abi.Api.min_abi_size(), sum(self.header["atb_api"]["fields"]["destroy_backend"]))


if __name__ == "__main__":
    unittest.main()
