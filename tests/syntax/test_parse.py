"""parse(): languages, wrapping, offsets, flat arrays, errors and extreme inputs."""

from __future__ import annotations

import numpy as np
import pytest
import tree_sitter
from snippets import SNIPPETS

from codeprobe.errors import (
    CodeParseError,
    EmptyCodeError,
    InvalidSourceError,
    UnknownLanguageError,
)
from codeprobe.syntax import known_languages, parse
from codeprobe.syntax.languages import ts_language, wrappers
from codeprobe.syntax.parsing import _parse_with


def test_known_languages_cover_codesearchnet():
    assert {"python", "java", "javascript", "go", "php", "ruby"} <= set(known_languages())


@pytest.mark.parametrize("language", sorted(SNIPPETS))
def test_every_language_parses_bare_functions(language):
    for code in SNIPPETS[language]:
        tree = parse(code, language)
        assert not tree.issues, (code, tree.issues)
        assert tree.grammar.package_version
        # Parents precede children; depth is parent depth + 1.
        p = tree.parent
        assert p[0] == -1 and np.all(p[1:] < np.arange(1, tree.n_nodes)) and np.all(p[1:] >= 0)
        assert np.all(tree.depth[1:] == tree.depth[p[1:]] + 1)
        # Children lie inside their parent's span; offsets refer to the user's text.
        assert np.all(tree.start_byte[1:] >= tree.start_byte[p[1:]])
        assert np.all(tree.end_byte[1:] <= tree.end_byte[p[1:]])
        assert tree.end_byte.max() <= len(code.encode())


def test_php_without_open_tag_is_wrapped_and_offsets_stay_in_user_text():
    code = SNIPPETS["php"][0]
    tree = parse(code, "php")
    assert tree.wrapper is not None and "php_tag" not in set(tree.types)
    toks = tree.tokens()
    assert toks.texts[:3] == ("function", "add", "(")
    assert all(code.encode()[s:e].decode() == t for s, e, t in zip(toks.start_byte, toks.end_byte, toks.texts))


@pytest.mark.parametrize(
    "code",
    [
        "\ufeff<?php\nfunction f($x) {\n    return $x + 1;\n}\n",  # a byte-order mark first
        "<?PHP\nfunction f($x) { return $x; }\n",
        "<?= $title ?>\n<p><?php echo f(1); ?></p>\n",
        "<? echo 1;\n",
        "<!DOCTYPE html>\n<html>\n<?php\nfunction f() { return 1; }\n?>\n</html>\n",
    ],
)
def test_php_files_that_parse_as_given_are_not_wrapped(code):
    # Fault 2: text the grammar accepts as given is parsed as given, whatever it begins with.
    tree = parse(code, "php", strict=True)
    assert tree.wrapper is None and "php_tag" in set(tree.types)
    toks = tree.tokens()
    source = code.encode()
    assert all(source[s:e].decode() == t for s, e, t in zip(toks.start_byte, toks.end_byte, toks.texts))


def test_php_without_tag_holding_an_open_tag_in_a_string_is_wrapped():
    tree = parse('function f() { return "<?php"; }', "php", strict=True)
    assert tree.wrapper is not None and tree.tokens().texts[:2] == ("function", "f")


def test_php_broken_function_without_tag_is_not_taken_for_html():
    tree = parse("function add($a, $b) {\n    return $a + $b;\n", "php")
    assert tree.issues and tree.tokens().texts[:2] == ("function", "add")


BROKEN = [
    # (language, code, expected MISSING token or None): a method that misses its closing
    # brace, or has a stray one. A wrapper must never close or open a block for the user
    # (fault 1); how the bare parse reports the problem is the grammar's.
    ("java", "public int f(int x) {\n    if (x > 0) {\n        return x;\n    }\n    return -x;\n", "}"),
    ("java", "public int f(int x) {\n    return x;\n}\n}\n", None),
    ("javascript", "foo(a) {\n  if (a) {\n    return a;\n  }\n  return 0;\n", None),
    ("php", "public function f($x) {\n    return $x;\n", None),
    ("php", "public function f($x) {\n    return $x;\n}\n}\n", None),
    ("csharp", "public string Name {\n    get { return name; }\n", None),
    ("typescript", "private f(x: number): number {\n  if (x) {\n    return x;\n  }\n  return 0;\n", None),
    ("kotlin", "constructor(x: Int) : this(x, 0) {\n    println(x)\n", None),
    ("go", "x := 1\nif x > 0 {\n\treturn x\n", None),
    ("rust", "let x = 1;\nif x > 0 {\n    return x;\n", None),
    ("swift", "subscript(i: Int) -> Int {\n    return items[i]\n", None),
    ("cpp", "public:\n  int size() const {\n    return n_;\n", None),
]


@pytest.mark.parametrize("language, code, missing", BROKEN)
def test_wrappers_never_hide_broken_code(language, code, missing):
    tree = parse(code, language)
    assert tree.issues, tree.wrapper
    if missing:
        assert any(i.kind == "missing" and i.node_type == missing for i in tree.issues), tree.issues
        # Located in the user's text: at its end, where the brace is missing.
        assert max(i.start_byte for i in tree.issues) >= len(code.rstrip().encode()) - 1
    with pytest.raises(CodeParseError):
        parse(code, language, strict=True)


def test_wrapped_parse_never_consumes_the_wrapper():
    # The wrapped parse of a method missing its `}` is clean for the parser (the wrapper's `}`
    # closes the method) but is refused: the method's body spans into the wrapper.
    code = BROKEN[0][1]
    tree, rank = _parse_with(code, code.encode(), "java", wrappers("java")[0])
    assert tree is None
    # A stray `}` closes the wrapper's class instead: an error in the wrapper's text counts.
    code = BROKEN[1][1]
    _, rank = _parse_with(code, code.encode(), "java", wrappers("java")[0])
    _, bare_rank = _parse_with(code, code.encode(), "java", None)
    assert rank >= bare_rank > (False, 0)


@pytest.mark.parametrize("language", ["python", "go", "swift"])
def test_wrapper_holder_is_cut_so_wrapped_equals_bare(language):
    code = {"python": "x = f(1)\ny = x\n", "go": "x := 1\ny := x\n", "swift": "let x = 1\nprint(x)\n"}[language]
    bare, bare_rank = _parse_with(code, code.encode(), language, None)
    holder = next(w for w in wrappers(language) if w.holder)
    if language == "python":
        code = "    " + code.replace("\n", "\n    ").rstrip(" ")  # the class body is indented
        bare = parse(code.replace("    ", ""), language)
    wrapped, rank = _parse_with(code, code.encode(), language, holder)
    assert rank == (False, 0) and wrapped is not None
    assert list(wrapped.types) == list(bare.types)
    for name in ("parent", "depth", "is_named", "field_ids"):
        np.testing.assert_array_equal(getattr(wrapped, name), getattr(bare, name), err_msg=name)


def test_valid_code_with_control_characters_is_not_binary():
    # Fault 3: a short function whose strings hold raw ESC characters (CPython compiles it).
    code = 'def red(s):\n    return "\x1b[31m" + s + "\x1b[0m"\n'
    compile(code, "<test>", "exec")
    for text in (code, code * 50):  # the verdict does not depend on length
        tree = parse(text, "python", strict=True)
        assert "\x1b[31m" in tree.tokens().texts
    # A form feed between functions, as in CPython's own sources.
    assert not parse("def f():\n    pass\n\x0c\ndef g():\n    pass\n", "python").issues
    # Control characters outside strings are the grammar's to judge: located issues, not binary.
    assert parse("x = 1\x01\x02\n", "python").issues


def test_php_with_open_tag_is_not_wrapped():
    tree = parse("<?php\n" + SNIPPETS["php"][0], "php")
    assert tree.wrapper is None and tree.tokens().types[0] == "php_tag"


def test_wrapped_parse_equals_bare_parse_node_for_node():
    # A Java method parses bare as well as inside the class wrapper: the wrapper must vanish
    # without a trace (same types, parents, depths and spans).
    code = SNIPPETS["java"][0]
    bare = parse(code, "java")
    assert bare.wrapper is None
    wrapped, rank = _parse_with(code, code.encode(), "java", wrappers("java")[0])
    assert rank == (False, 0)
    assert list(wrapped.types) == list(bare.types)
    for name in ("parent", "depth", "start_byte", "end_byte", "is_named", "field_ids"):
        np.testing.assert_array_equal(getattr(wrapped, name), getattr(bare, name), err_msg=name)


def test_method_outside_class_uses_wrapper_when_needed():
    tree = parse("public Point(int x) { this.x = x; }", "java")
    assert not tree.issues
    assert tree.types[1] == "constructor_declaration"
    assert "_CodeprobeWrapper_" not in tree.tokens().texts


def test_indented_python_method():
    code = "    def area(self):\n        return self.w * self.h\n"
    tree = parse(code, "python")
    assert not tree.issues
    assert tree.tokens().texts[:2] == ("def", "area")


def test_errors_are_counted_and_located():
    tree = parse("def f(:\n  return (1\n", "python")
    assert tree.has_errors
    assert tree.n_error_nodes >= 1 and tree.n_missing_nodes >= 1
    lines = {issue.line for issue in tree.issues}
    assert lines <= {1, 2}
    with pytest.raises(CodeParseError, match="line") as info:
        parse("def f(:\n  return (1\n", "python", strict=True)
    assert info.value.issues == tree.issues


@pytest.mark.parametrize(
    "code, error",
    [
        ("", EmptyCodeError),
        ("  \n\t\n", EmptyCodeError),
        (b"def f():\n    return '\xff\xfe'\n", InvalidSourceError),
        (bytes(range(256)) * 4, InvalidSourceError),
        ("x = 1\x00\x00", InvalidSourceError),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", InvalidSourceError),
    ],
)
def test_bad_input_gives_typed_errors(code, error):
    with pytest.raises(error):
        parse(code, "python")


def test_unknown_language():
    with pytest.raises(UnknownLanguageError, match="known: bash, c, cpp"):
        parse("x", "cobol")
    assert parse("x = 1", "PY").language == "python"


def test_typed_errors_are_value_errors():
    with pytest.raises(ValueError):
        parse("", "python")


def test_deep_nesting_needs_no_recursion():
    depth = 20_000
    code = "x = " + "(" * depth + "1" + ")" * depth + "\n"
    tree = parse(code, "python")
    assert tree.depth.max() > depth
    toks = tree.tokens()
    assert len(toks) == 2 * depth + 3
    assert toks.depth.max() > depth


def test_hundred_thousand_line_file():
    code = "".join(f"v{i} = {i}\n" for i in range(100_000))
    tree = parse(code, "python")
    assert not tree.issues
    toks = tree.tokens()
    assert len(toks) == 300_000
    assert toks.texts[-3:] == ("v99999", "=", "99999")


def test_unicode_offsets():
    code = "def ñandú(x):\n    return 'ü€𝄞' + x\n"
    tree = parse(code, "python")
    toks = tree.tokens()
    source = code.encode()
    for text, sb, eb, sc, ec in zip(toks.texts, toks.start_byte, toks.end_byte, toks.start_char, toks.end_char):
        assert source[sb:eb].decode() == text == code[sc:ec]


def test_arrays_are_read_only():
    tree = parse("x = 1", "python")
    with pytest.raises(ValueError):
        tree.parent[0] = 3


def test_field_ids_are_tree_sitters_fields_of_each_child():
    code = "def f(a):\n    if a:\n        return g(a, *b)\n"
    tree = parse(code, "python")
    ts_root = tree_sitter.Parser(ts_language("python")).parse(code.encode()).root_node
    expected, stack = [], [(ts_root, "")]  # preorder; the root is in no field
    while stack:
        node, field = stack.pop()
        expected.append(field)
        stack.extend(reversed([(c, node.field_name_for_child(i) or "") for i, c in enumerate(node.children)]))
    assert [tree.field_names[f] for f in tree.field_ids] == expected
    assert "condition" in expected and tree.field_names[0] == ""


def test_lambda_keyword_is_anonymous_though_a_named_type_shares_its_name():
    tree = parse("f = lambda x: x\n", "python")
    kinds = [(str(t), bool(n)) for t, n in zip(tree.types, tree.is_named) if t == "lambda"]
    assert kinds == [("lambda", True), ("lambda", False)]  # the node, then its keyword


def test_to_networkx_is_the_tree():
    tree = parse(SNIPPETS["go"][0], "go")
    graph = tree.to_networkx()
    assert graph.number_of_nodes() == tree.n_nodes
    assert graph.number_of_edges() == tree.n_nodes - 1
    assert graph.nodes[0]["type"] == "source_file"
