"""Tests of tools/package.py, run by `make test` on the debug binaries it builds."""

import os
import stat
import subprocess
import sys
import tempfile
import unittest
import zipfile

sys.path.insert(0, os.path.dirname(__file__))
import package  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where `make test` built the binaries: cargo's target directory (CARGO_TARGET_DIR or
# target/), as cargo reports it from the workspace root.
_cwd = os.getcwd()
os.chdir(ROOT)
DEBUG = os.path.join(package.target_directory(), "debug")
os.chdir(_cwd)


class Glibc(unittest.TestCase):
    def test_reads_the_version_needs_of_a_real_binary(self):
        version = package.required_glibc(os.path.join(DEBUG, "hello"))
        self.assertIsNotNone(version)
        self.assertEqual(version[0], 2)

    def test_not_elf_is_an_error(self):
        with tempfile.NamedTemporaryFile() as f:
            f.write(b"#!/bin/sh\n")
            f.flush()
            with self.assertRaises(ValueError):
                package.required_glibc(f.name)

    def test_verdicts(self):
        self.assertIsNone(package.verdict("f", (2, 34), "provided.al2023"))
        self.assertIsNone(package.verdict("f", None, "provided.al2"))
        refusal = package.verdict("f", (2, 34), "provided.al2")
        self.assertIn("needs glibc 2.34 but provided.al2 has glibc 2.26", refusal)
        self.assertIn("fix:", refusal)
        self.assertIsNotNone(package.verdict("f", (2, 35), "provided.al2023"))
        self.assertEqual(package.parse_glibc("GLIBC_2.3.4"), (2, 3, 4))
        self.assertIsNone(package.parse_glibc("GLIBC_PRIVATE"))


class Zips(unittest.TestCase):
    def test_function_and_layer_zips_have_lambdas_layout(self):
        with tempfile.TemporaryDirectory() as out:
            code = package.main(["--bin-dir", DEBUG, "--out", out])
            self.assertEqual(code, 0)
            with zipfile.ZipFile(os.path.join(out, "hello.zip")) as z:
                [entry] = z.infolist()
                self.assertEqual(entry.filename, "bootstrap")
                self.assertTrue((entry.external_attr >> 16) & stat.S_IXUSR)
            with zipfile.ZipFile(os.path.join(out, "layer-telemetry-summary.zip")) as z:
                [entry] = z.infolist()
                self.assertEqual(entry.filename, "extensions/telemetry-summary")
                self.assertTrue((entry.external_attr >> 16) & stat.S_IXUSR)
            # unzip keeps the executable bit, as Lambda's extraction does.
            with tempfile.TemporaryDirectory() as tree:
                subprocess.run(["unzip", "-q", os.path.join(out, "hello.zip"), "-d", tree], check=True)
                self.assertTrue(os.access(os.path.join(tree, "bootstrap"), os.X_OK))

    def test_a_binary_too_new_for_the_runtime_is_refused(self):
        required = package.required_glibc(os.path.join(DEBUG, "hello"))
        if required <= package.RUNTIME_GLIBC["provided.al2"]:
            self.skipTest("this machine's binaries run on provided.al2")
        with tempfile.TemporaryDirectory() as out:
            code = package.main(["--bin-dir", DEBUG, "--out", out, "--runtime", "provided.al2"])
            self.assertEqual(code, 1)
            self.assertFalse(os.path.exists(os.path.join(out, "hello.zip")))


if __name__ == "__main__":
    unittest.main()
