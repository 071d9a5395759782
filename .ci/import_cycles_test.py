#!/usr/bin/env python3
"""Tests of import_cycles.py on small crates written to a temporary folder: a circle closed
through an inline `super::` or `self::` path is reported, and re-exports or test code are
not circles. Run by `make lint`: python3 .ci/import_cycles_test.py"""

import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_cycles import cycles, graph  # noqa: E402


def crate(files: dict[str, str]) -> Path:
    """A crate's `src/` holding `files` (path -> source)."""
    src = Path(tempfile.mkdtemp()) / "src"
    for path, text in files.items():
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_text(text)
    return src


class ImportCycles(unittest.TestCase):
    def test_a_circle_through_an_inline_super_path_is_reported(self):
        src = crate({
            "lib.rs": "mod store;\n",
            "store/mod.rs": "pub mod page;\npub mod sqlite;\n",
            "store/page.rs": "pub fn read() { crate::store::sqlite::reader::rows(); }\n",
            "store/sqlite/mod.rs": "pub mod reader;\n",
            "store/sqlite/reader.rs": "pub fn rows() -> usize { super::super::page::read(); 0 }\n",
        })
        self.assertEqual(cycles(graph(src)), [["store::page", "store::sqlite::reader"]])

    def test_a_circle_through_an_inline_self_path_is_reported(self):
        src = crate({
            "lib.rs": "mod a;\n",
            "a/mod.rs": "mod b;\npub fn f() { self::b::g(); }\n",
            "a/b.rs": "pub fn g() { crate::a::f(); }\n",
        })
        self.assertEqual(cycles(graph(src)), [["a", "a::b"]])

    def test_a_parent_re_exporting_a_child_and_test_code_are_no_circles(self):
        src = crate({
            "lib.rs": "mod store;\n",
            "store/mod.rs": "pub mod error;\npub mod sqlite;\npub use error::StoreError;\n",
            "store/error.rs": "pub struct StoreError;\n",
            "store/sqlite/mod.rs": "pub fn open() -> super::StoreError { super::super::store::StoreError }\n"
            "#[cfg(test)]\nmod tests {\n    fn t() { crate::store::sqlite::open(); }\n}\n",
        })
        self.assertEqual(cycles(graph(src)), [])


if __name__ == "__main__":
    unittest.main()
