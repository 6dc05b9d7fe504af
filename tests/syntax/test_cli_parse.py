"""`codeprobe parse` and `codeprobe run` from the command line."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from snippets import SNIPPETS

from codeprobe.cli import main
from codeprobe.syntax import ast_distance, parse, uast_distance


def invoke(args, stdin=None):
    return CliRunner().invoke(main, args, input=stdin)


def test_parse_prints_tokens_with_types():
    result = invoke(["parse", "-", "--lang", "python"], SNIPPETS["python"][0])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["#", "type"]
    assert "'maximum'" in lines[2] and "identifier" in lines[2]
    assert "17 tokens" in result.stderr


def test_parse_json_is_one_object_with_offsets_into_the_input(tmp_path):
    code = SNIPPETS["php"][0]  # wrapped for parsing: offsets must still index the file as given
    path = tmp_path / "add.php"
    path.write_bytes(code.encode())
    result = invoke(["parse", str(path), "--json"])
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    data = code.encode()
    assert [t["text"] for t in obj["tokens"]][:3] == ["function", "add", "("]
    assert all(data[t["start"] : t["end"]].decode() == t["text"] for t in obj["tokens"])
    n = len(obj["tokens"])
    toks = parse(code, "php").tokens()
    assert np.array_equal(np.array(obj["ast_distance"]), ast_distance(toks))
    assert np.array_equal(np.array(obj["uast_distance"]), uast_distance(toks))
    assert len(obj["uast_distance"]) == n and all(len(row) == n for row in obj["uast_distance"])
    assert obj["grammar"]["version"] and obj["language"] == "php"


def test_parse_json_has_the_token_tree():
    code = 'def greet(name):\n    return "hi " + name\n'
    for flags in ([], ["--collapse-strings"]):
        result = invoke(["parse", "-", "--lang", "python", "--json", *flags], code)
        assert result.exit_code == 0, result.output
        obj = json.loads(result.stdout)
        tt = parse(code, "python").token_tree(collapse_strings=bool(flags))
        assert obj["head_rule"] == "first-token"
        assert obj["heads"] == tt.heads.tolist() and obj["depths"] == tt.depth.tolist()
        assert len(obj["heads"]) == len(obj["tokens"]) and obj["heads"].count(-1) == 1
    assert obj["heads"] == [-1, 0, 0, 2, 2, 0, 0, 6, 7, 7]  # the string is one token


def test_parse_bad_input_exits_nonzero_with_one_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_bytes(b"def f():\n    return '\xff'\n")
    for args, stdin in [
        (["parse", str(bad)], None),
        (["parse", "-", "--lang", "python"], ""),
        (["parse", "-", "--lang", "cobol"], "x"),
        (["parse", str(tmp_path / "missing.py")], None),
        (["parse", "-"], "x = 1"),  # no language for stdin
        (["parse", "-", "--lang", "python", "--strict"], "def f(:\n"),
    ]:
        result = invoke(args, stdin)
        assert result.exit_code != 0, args
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_strict_reports_a_method_missing_its_brace(tmp_path):
    # Fault 1, as a user meets it: the class wrapper must not close the method.
    path = tmp_path / "F.java"
    path.write_text("public int f(int x) {\n    if (x > 0) {\n        return x;\n    }\n    return -x;\n")
    result = invoke(["parse", str(path), "--strict"])
    assert result.exit_code == 2
    assert "missing '}' at line 5" in result.stderr
    lenient = invoke(["parse", str(path), "--json"])
    assert lenient.exit_code == 0
    assert json.loads(lenient.stdout)["issues"][0]["type"] == "}"


def test_strict_accepts_php_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "f.php"
    path.write_bytes("\ufeff<?php\nfunction f($x) {\n    return $x + 1;\n}\n".encode())
    result = invoke(["parse", str(path), "--strict"])
    assert result.exit_code == 0, result.output
    assert "0 parse issue(s)" in result.stderr


def test_strict_accepts_escape_characters_in_strings(tmp_path):
    path = tmp_path / "colors.py"
    path.write_bytes(b'def red(s):\n    return "\x1b[31m" + s + "\x1b[0m"\n')
    assert invoke(["parse", str(path), "--strict"]).exit_code == 0


def test_language_from_extension_for_every_example():
    from snippets import DATA, EXAMPLES

    for language, files in EXAMPLES.items():
        name, _ = files[0]
        result = invoke(["parse", str(DATA / language / name), "--strict", "--json"])
        assert result.exit_code == 0, (name, result.output)
        assert json.loads(result.stdout)["language"] == language
