"""Each loader on real data: cosqa-dev.json, the Java token file, a directory of several
languages, a git checkout, and the running interpreter's standard library."""

from __future__ import annotations

import ast
import gzip
import itertools
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from shared_data import cosqa_functions, java_methods, shared_path

from codeprobe.datasets import SkipCounter, Snippet, load_dataset, parses_cleanly, stdlib_root
from codeprobe.datasets.sources import source_files
from codeprobe.errors import DatasetError, InputError, UnknownLanguageError


def test_cosqa_json_list_all_604_functions():
    counter = SkipCounter()
    snippets = list(load_dataset(shared_path("data", "cosqa-dev.json"), "python", counter=counter))
    assert [(s.id, s.code) for s in snippets] == list(cosqa_functions())
    assert {s.language for s in snippets} == {"python"}
    assert snippets[17].source == "cosqa-dev.json#17"
    report = counter.report()
    assert (report.read, report.kept, report.n_skipped) == (604, 604, 0)
    # The dataset says all parse with tree-sitter-python.
    assert len(list(parses_cleanly(snippets, counter))) == 604


def test_cosqa_without_language_fails_up_front():
    with pytest.raises(DatasetError, match="cannot tell the language"):
        load_dataset(shared_path("data", "cosqa-dev.json"), counter=SkipCounter())


def test_java_token_file_first_lines_parse():
    counter = SkipCounter()
    path = shared_path("data", "csn-java-test-tokens.txt")
    # No language given: "java" is a word of the file name.
    snippets = list(itertools.islice(load_dataset(path, counter=counter), 300))
    assert [(s.id, s.code) for s in snippets] == list(java_methods(300))
    assert {s.language for s in snippets} == {"java"}
    assert snippets[0].source == "csn-java-test-tokens.txt:1"
    assert len(list(parses_cleanly(snippets, counter))) == 300
    assert counter.report().kept == 300


def test_token_file_refuses_python_and_non_tab_files(tmp_path):
    path = shared_path("data", "csn-java-test-tokens.txt")
    with pytest.raises(DatasetError, match="lost its layout"):
        load_dataset(path, "python", counter=SkipCounter())
    plain = tmp_path / "tokens.txt"
    plain.write_text("public void f ( ) { }\n")
    with pytest.raises(DatasetError, match="no tab"):
        load_dataset(plain, "java", counter=SkipCounter())


def test_token_file_ruby_loads_with_a_warning(tmp_path, caplog):
    path = tmp_path / "ruby.txt"
    path.write_text("r1\tdef f ( x ) x end\n")
    snippets = list(load_dataset(path, counter=SkipCounter()))
    assert [s.language for s in snippets] == ["ruby"]
    assert "layout is lost" in caplog.text


def test_jsonl_gz_codesearchnet_style(tmp_path):
    rows = [
        {"url": "https://x/a.py#L1", "language": "python", "original_string": "def a():\n    return 1\n"},
        {"url": "https://x/b.py#L1", "language": "python", "code": "def b(): pass", "original_string": "x"},
    ]
    path = tmp_path / "python_test_0.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps(r) for r in rows) + "\n")
    snippets = list(load_dataset(path, counter=SkipCounter()))
    assert [s.id for s in snippets] == ["https://x/a.py#L1", "https://x/b.py#L1"]
    assert [s.code for s in snippets] == ["def a():\n    return 1\n", "def b(): pass"]
    assert snippets[1].source == "python_test_0.jsonl.gz:2"


def test_json_lines_in_a_json_file_and_func_field(tmp_path):
    path = tmp_path / "devign.json"
    path.write_text('{"idx": 7, "func": "int f(void) { return 0; }", "target": 1}\n')
    snippets = list(load_dataset(path, "java", counter=SkipCounter()))
    assert [(s.id, s.code) for s in snippets] == [("7", "int f(void) { return 0; }")]


# A small multi-language tree: (relative path, text, expected ids).
_SOURCES = {
    "pkg/a.py": (
        "import os\n\ndef top(x):\n    def inner(y):\n        return y\n    return inner(x)\n\n"
        "class A:\n    @staticmethod\n    def m(self):\n        return 1\n\n"
        "    async def n(self):\n        pass\n",
        ["pkg/a.py::top:3", "pkg/a.py::A.m:10", "pkg/a.py::A.n:13"],
    ),
    "B.java": (
        "public class B {\n    public B() { }\n    public int f(int x) { return x + 1; }\n"
        "    interface I { void g(); }\n"
        "    static class C { void h() { Runnable r = new Runnable() { public void run() {} }; } }\n}\n",
        ["B.java::B.B:2", "B.java::B.f:3", "B.java::B.C.h:5"],
    ),
    "c.js": (
        "function a(x) { return function b() {}; }\nconst f = (x) => x + 1, k = 3;\n"
        "var g = function () { return 2; };\nmodule.exports.h = async () => {};\n"
        "class K { m() { return 1; } static s() {} }\n",
        ["c.js::a:1", "c.js::f:2", "c.js::g:3", "c.js::module.exports.h:4", "c.js::K.m:5", "c.js::K.s:5"],
    ),
    "d.go": (
        "package p\n\nfunc F(a int) int { return a }\nfunc (r *T) M() {}\nfunc asm()\n",
        ["d.go::F:3", "d.go::T.M:4"],
    ),
    "e.php": (
        "<?php\nfunction f() { return 1; }\n"
        "abstract class A { abstract function g(); public function h() { return 2; } }\n",
        ["e.php::f:2", "e.php::A.h:3"],
    ),
    "f.rb": (
        "module M\n  class C\n    def a\n    end\n    def self.b(x)\n      x\n    end\n  end\nend\n",
        ["f.rb::M.C.a:3", "f.rb::M.C.self.b:5"],
    ),
}


def _write_sources(root: Path) -> None:
    for rel, (text, _) in _SOURCES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    for skipped in (".hidden/h.py", "node_modules/n.js", "pkg/__pycache__/c.py"):
        (root / skipped).parent.mkdir(parents=True, exist_ok=True)
        (root / skipped).write_text("def hidden(): return 1\n")
    (root / "notes.txt").write_text("def not_code(): pass\n")
    (root / "bad.py").write_bytes(b'def bad():\n    return "\xff"\n')


def test_directory_of_six_languages(tmp_path):
    _write_sources(tmp_path)
    counter = SkipCounter()
    snippets = list(load_dataset(tmp_path, counter=counter))
    expected = [i for rel in sorted(_SOURCES) for i in _SOURCES[rel][1]]
    assert [s.id for s in snippets] == expected
    by_id = {s.id: s for s in snippets}
    assert by_id["pkg/a.py::A.m:10"].code == "def m(self):\n        return 1"
    assert by_id["c.js::f:2"].code == "const f = (x) => x + 1, k = 3;"
    assert by_id["e.php::A.h:3"].code == "public function h() { return 2; }"
    assert by_id["d.go::T.M:4"].source == f"{tmp_path / 'd.go'}:4"
    # Every extracted function parses on its own (wrappers for methods and bare PHP).
    assert len(list(parses_cleanly(snippets, counter))) == len(snippets)
    report = counter.report()
    assert report.skipped == {"no_body": 3, "invalid_utf8": 1}
    assert report.read == len(snippets) + 4
    assert "bad.py (byte 23)" in report.examples["invalid_utf8"]


def test_directory_one_language_and_one_file(tmp_path):
    _write_sources(tmp_path)
    ruby = list(load_dataset(tmp_path, "ruby", counter=SkipCounter()))
    assert [s.id for s in ruby] == _SOURCES["f.rb"][1]
    single = list(load_dataset(tmp_path / "d.go", counter=SkipCounter()))
    assert [s.id for s in single] == _SOURCES["d.go"][1]
    with pytest.raises(DatasetError, match="not python"):
        load_dataset(tmp_path / "d.go", "python", counter=SkipCounter())


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_checkout_lists_tracked_files_only(tmp_path):
    _write_sources(tmp_path)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "pkg/a.py", "f.rb"], check=True)
    snippets = list(load_dataset(tmp_path, counter=SkipCounter()))
    assert [s.id for s in snippets] == _SOURCES["f.rb"][1] + _SOURCES["pkg/a.py"][1]


def _ast_function_ids(rel: str, path: Path) -> list[str]:
    """Oracle: outermost functions and methods by Python's own parser."""
    found = []

    def walk(node, classes):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((child.lineno, f"{rel}::{'.'.join(classes + [child.name])}:{child.lineno}"))
            elif isinstance(child, ast.ClassDef):
                walk(child, classes + [child.name])
            else:
                walk(child, classes)

    walk(ast.parse(path.read_bytes()), [])
    return [ident for _, ident in sorted(found)]


def test_stdlib_first_functions_match_pythons_own_parser():
    files = source_files(stdlib_root(), ["python"], stdlib=True)
    assert files and all(not {"test", "tests", "site-packages", "idle_test"} & set(Path(rel).parts) for rel, _ in files)
    assert [rel for rel, _ in files] == sorted(rel for rel, _ in files)
    expected = [i for rel, path in files[:40] for i in _ast_function_ids(rel, path)]
    counter = SkipCounter()
    got = list(itertools.islice(load_dataset("stdlib", counter=counter), len(expected)))
    assert [s.id for s in got] == expected
    assert all(s.language == "python" and Path(s.source.rsplit(":", 1)[0]).is_file() for s in got)
    again = list(itertools.islice(load_dataset("stdlib:python", counter=SkipCounter()), 200))
    assert again == got[:200]


def test_stdlib_is_python_only():
    with pytest.raises(DatasetError, match="standard library is Python"):
        load_dataset("stdlib", "java", counter=SkipCounter())


def test_up_front_errors(tmp_path):
    counter = SkipCounter()
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "missing.jsonl", "python", counter=counter)
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(DatasetError, match="unknown dataset format"):
        load_dataset(tmp_path / "data.csv", counter=counter)
    (tmp_path / "obj.json").write_text('{"data": [1, 2]')
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_dataset(tmp_path / "obj.json", "python", format="json", counter=counter)
    (tmp_path / "num.json").write_text("42")
    with pytest.raises(DatasetError, match="not a JSON list"):
        load_dataset(tmp_path / "num.json", "python", counter=counter)
    with pytest.raises(UnknownLanguageError, match="cobol"):
        load_dataset(tmp_path / "num.json", "cobol", counter=counter)
    with pytest.raises(DatasetError, match="unknown dataset format 'xml'"):
        load_dataset(tmp_path / "num.json", "python", format="xml", counter=counter)
    # All typed, all input errors, nothing read yet.
    assert issubclass(DatasetError, InputError) and counter.n_read == 0


def test_snippet_is_frozen_and_canonical():
    s = Snippet(id="x", language="JS", code="f()", source="here")
    assert s.language == "javascript"
    with pytest.raises(AttributeError):
        s.code = "g()"  # type: ignore[misc]
    with pytest.raises(InputError):
        Snippet(id="", language="python", code="pass", source="")
