"""Bad rows finish the run: each is skipped and counted under its reason, nothing is lost."""

from __future__ import annotations

import json
import pickle

from codeprobe.datasets import SKIP_REASONS, SkipCounter, dedupe, load_dataset, max_length, parses_cleanly

_GOOD = "def ok_{i}(x):\n    return x + {i}\n"


def _bad_jsonl(path):
    """A JSON-lines file with 5 good rows and one row for each kind of bad input."""
    lines: list[bytes] = []

    def row(**record):
        lines.append(json.dumps(record).encode())

    for i in range(5):
        row(idx=f"good-{i}", code=_GOOD.format(i=i))
    lines.append(b"")  # empty line
    lines.append(b"   ")  # whitespace-only line
    lines.append(b'{"idx": "bytes", "code": "def f():\n    return \'\xff\xfe\'\n"}'.replace(b"\n", b"\\n"))
    lines.append(b"this is not json")
    lines.append(b'{"idx": "trunc", "code": "def f(')  # truncated JSON
    lines.append(b"[1, 2]")  # JSON, but not an object
    row(idx="nocode", doc="no code field")
    row(idx="numcode", code=12)
    row(idx="blank", code="   \n\t")
    row(idx="unparseable", code="def broken(:\n    return )\n")
    row(idx="huge", code="def huge():\n" + "    x = 1\n" * 5000)
    row(idx="java", language="java", code="int f() { return 1; }")
    row(idx="cobol", language="cobol", code="MOVE A TO B.")
    row(idx="nul", code="def f():\n    return 1\x00\n")
    row(idx="good-0", code="def again(): pass\n")  # id used before
    row(idx="copy", code="def ok_1(x):\n        return   x + 1")  # same code as good-1 up to whitespace
    row(idx="surrogate", code="def f():\n    return '\ud800'\n")
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_bad_jsonl_finishes_with_per_reason_counts(tmp_path):
    path = tmp_path / "mixed.jsonl"
    _bad_jsonl(path)
    counter = SkipCounter()
    snippets = load_dataset(path, "python", counter=counter)
    snippets = max_length(snippets, counter, max_chars=10_000)
    snippets = parses_cleanly(snippets, counter)
    snippets = dedupe(snippets, counter)
    kept = list(snippets)

    assert [s.id for s in kept] == [f"good-{i}" for i in range(5)]
    report = counter.report()
    assert dict(report.skipped) == {
        "empty": 3,  # the empty line, the whitespace line, the blank code
        "invalid_utf8": 2,  # raw \xff\xfe bytes, a lone surrogate escape
        "not_json": 2,
        "bad_record": 3,  # a list row, no code field, code not a string
        "parse_error": 1,
        "too_long": 1,
        "wrong_language": 2,  # java when python was asked for, cobol has no grammar
        "binary": 1,
        "duplicate_id": 1,
        "duplicate": 1,
    }
    assert report.read == 22 and report.kept == 5 and report.read == report.kept + report.n_skipped
    assert report.examples["duplicate"] == ("copy (same as good-1)",)
    assert report.examples["parse_error"][0].startswith("unparseable (")
    assert report.examples["not_json"][0].startswith("mixed.jsonl:9 (")
    summary = report.summary()
    assert summary.splitlines()[0] == "read 22, kept 5, skipped 17"
    assert all(reason in summary for reason in report.skipped)
    assert json.loads(json.dumps(report.to_dict()))["skipped"] == dict(report.skipped)
    assert pickle.loads(pickle.dumps(report)) == report  # travels between pipeline tasks


def test_rows_keep_their_own_language_when_none_is_asked(tmp_path):
    path = tmp_path / "mixed.jsonl"
    rows = [
        {"id": "p", "language": "python", "code": "def f(): pass"},
        {"id": "j", "language": "Java", "code": "int f() { return 1; }"},
        {"id": "c", "language": "cobol", "code": "MOVE A TO B."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    counter = SkipCounter()
    snippets = list(load_dataset(path, counter=counter))
    assert [(s.id, s.language) for s in snippets] == [("p", "python"), ("j", "java")]
    assert counter.counts == {"wrong_language": 1}


def test_bad_token_file_lines(tmp_path):
    path = tmp_path / "java-tokens.tsv"
    path.write_bytes(
        b"1\tint f ( ) { return 1 ; }\n"
        b"\n"
        b"no tab here\n"
        b'2\tint g ( ) { return "\xff" ; }\n'
        b"3\t   \n"
        b"1\tint h ( ) { }\n"
        b"4\tint broken ( { \n"
        b"5\tvoid k ( ) { }\r\n"
    )
    counter = SkipCounter()
    kept = list(parses_cleanly(load_dataset(path, counter=counter), counter))
    assert [(s.id, s.code) for s in kept] == [("1", "int f ( ) { return 1 ; }"), ("5", "void k ( ) { }")]
    assert counter.counts == {
        "empty": 2,
        "bad_record": 1,
        "invalid_utf8": 1,
        "duplicate_id": 1,
        "parse_error": 1,
    }
    assert counter.report().read == 8


def test_bad_source_files_are_counted(tmp_path):
    (tmp_path / "ok.py").write_text("def f():\n    return 1\n")
    (tmp_path / "latin1.py").write_bytes(b"def g():\n    return '\xe9'\n")
    (tmp_path / "big.py").write_text("def big():\n" + "    x = 1\n" * 300)
    (tmp_path / "nul.js").write_bytes(b"function f() {}\x00\n")
    (tmp_path / "broken.py").write_text("def h(:\n    pass\n\ndef fine():\n    return 2\n")
    counter = SkipCounter()
    kept = list(parses_cleanly(load_dataset(tmp_path, counter=counter, max_file_bytes=1000), counter))
    assert [s.id for s in kept] == ["broken.py::fine:4", "ok.py::f:1"]
    assert counter.counts == {"file_too_large": 1, "invalid_utf8": 1, "binary": 1, "parse_error": 1}


def test_every_reason_is_documented():
    counter = SkipCounter()
    for reason in SKIP_REASONS:
        counter.skip(reason, "x")
    assert counter.report().skipped == {r: 1 for r in SKIP_REASONS}
    try:
        counter.skip("mystery", "x")
    except ValueError as err:
        assert "unknown skip reason" in str(err)
    else:
        raise AssertionError("an unknown reason must be refused")
