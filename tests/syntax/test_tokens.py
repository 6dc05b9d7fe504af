"""Code tokens: leaves in source order, comments dropped, optional string collapsing."""

from __future__ import annotations

from snippets import SNIPPETS

from codeprobe.syntax import parse


def test_tokens_are_the_leaves_without_comments():
    tree = parse(SNIPPETS["python"][1], "python")
    toks = tree.tokens()
    assert "comment" not in toks.types
    assert toks.texts[:6] == ("def", "greet", "(", "name", ")", ":")
    # f-string pieces are leaves; without collapsing they are separate tokens.
    assert "string_start" in toks.types and "interpolation" not in toks.types
    assert list(toks.node) == sorted(toks.node)
    assert tree.is_leaf[toks.node].all()


def test_java_line_and_block_comments_dropped():
    code = "/** doc */ int f() { /* a */ return 1; // b\n}"
    toks = parse(code, "java").tokens()
    assert not any("comment" in t for t in toks.types)
    assert toks.texts == ("int", "f", "(", ")", "{", "return", "1", ";", "}")


def test_collapse_strings_makes_one_token_per_string():
    code = SNIPPETS["python"][1]
    toks = parse(code, "python").tokens(collapse_strings=True)
    assert 'f"hi {name}!"' in toks.texts
    assert "string_start" not in toks.types
    i = toks.texts.index('f"hi {name}!"')
    assert toks.types[i] == "string"

    java = parse('String s = "a" + "b";', "java").tokens(collapse_strings=True)
    assert java.texts == ("String", "s", "=", '"a"', "+", '"b"', ";")
    assert java.types[3] == "string_literal"


def test_no_zero_width_tokens_from_error_recovery():
    toks = parse("def f(:\n  return (1\n", "python").tokens()
    assert all(len(t) > 0 for t in toks.texts)
    assert (toks.end_byte > toks.start_byte).all()
