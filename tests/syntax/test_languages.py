"""The grammar registry: every language's wheel, type tables, extensions, examples and real code.

Real code per language comes from installed packages where one ships it (C in markupsafe, C++ in
greenlet, Lua in docket and matplotlib, Bash in tqdm) and otherwise from the small unchanged
files in tests/syntax/real (see its README for their provenance and licences). Every function
is checked against the networkx reference.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from snippets import EXAMPLES
from test_distances import check_against_oracle

from codeprobe.syntax import (
    grammar_packages,
    known_languages,
    language_for_path,
    language_spec,
    parse,
)
from codeprobe.syntax.languages import ts_language, type_table

REPO = Path(__file__).resolve().parents[2]
REAL = Path(__file__).resolve().parent / "real"

REQUIRED = {
    "python", "java", "javascript", "go", "php", "ruby",
    "c", "cpp", "csharp", "rust", "typescript", "tsx", "kotlin", "scala", "swift", "bash", "lua",
}  # fmt: skip


def visible_types(language: str) -> set[str]:
    lang = ts_language(language)
    kinds = range(lang.node_kind_count)
    return {lang.node_kind_for_id(k) for k in kinds if lang.node_kind_is_visible(k)} - {None}


def test_registry_has_the_languages_code_model_research_uses():
    assert REQUIRED <= set(known_languages())
    assert len(known_languages()) >= 17


@pytest.mark.parametrize("language", sorted(REQUIRED))
def test_grammar_wheel_is_pinned_and_loads(language):
    spec = language_spec(language)
    pins = dict(re.findall(r'"(tree-sitter-[a-z-]+)==([^"]+)"', (REPO / "pyproject.toml").read_text()))
    assert pins[spec.package] == importlib.metadata.version(spec.package)
    assert spec.package in grammar_packages()
    assert ts_language(language).abi_version >= 13  # what tree-sitter 0.25 loads


@pytest.mark.parametrize("language", sorted(REQUIRED))
def test_type_tables_follow_the_specs_rules(language):
    # Both specs name comments by "comment" in the type and strings as `string` or
    # `*string_literal*`; the registry lists them per grammar, and the lists must be exactly
    # what the rules select among the types a tree can hold (the references use the rules).
    spec = language_spec(language)
    types = visible_types(language)
    assert set(spec.comments) == {t for t in types if "comment" in t}
    assert set(spec.strings) == {t for t in types if t == "string" or "string_literal" in t}
    assert spec.identifiers and set(spec.identifiers) <= types
    assert spec.code_marker is None or spec.code_marker in types
    for wrapper in spec.wrappers:
        assert wrapper.holder is None or wrapper.holder in types
    table = type_table(language)
    assert {table.names[i] for i in np.flatnonzero(table.comment)} == set(spec.comments)


def test_aliases_and_extensions():
    assert parse("x = 1", "PY").language == "python"
    for name, language in [("c#", "csharp"), ("C++", "cpp"), ("ts", "typescript"), ("sh", "bash"), ("kt", "kotlin")]:
        assert language_spec(name).name == language
    for path, language in [
        ("a/b/Main.KT", "kotlin"), ("x.tsx", "tsx"), ("x.ts", "typescript"), ("lib.rs", "rust"),
        ("x.hpp", "cpp"), ("x.h", "c"), ("run.sh", "bash"), ("x.cs", "csharp"), ("x.jsx", "javascript"),
        ("x.scala", "scala"), ("x.swift", "swift"), ("x.lua", "lua"), ("Makefile", None), ("x.txt", None),
    ]:  # fmt: skip
        assert language_for_path(path) == language, path
    extensions = [e for lang in known_languages() for e in language_spec(lang).extensions]
    assert len(extensions) == len(set(extensions))


def test_every_language_has_examples_in_data():
    assert set(EXAMPLES) == set(known_languages())


@pytest.mark.parametrize("language", sorted(REQUIRED))
def test_examples_parse_cleanly_and_match_networkx(language):
    for path, code in EXAMPLES[language]:
        assert language_for_path(path) == language
        tree = parse(code, language, strict=True)
        toks = tree.tokens()
        assert len(toks) > 0
        source = code.encode()
        assert all(source[s:e].decode() == t for s, e, t in zip(toks.start_byte, toks.end_byte, toks.texts))
        check_against_oracle(code, language)


@pytest.mark.parametrize(
    "language, file, wrapped",
    [
        ("csharp", "property.cs", True),
        ("csharp", "constructor.cs", True),
        ("typescript", "greet_method.ts", True),
        ("typescript", "constructor.ts", True),
        ("tsx", "render.tsx", True),
        ("kotlin", "secondary_constructor.kt", True),
        ("cpp", "access_label.cpp", True),
        ("cpp", "stack_pop.cpp", False),  # a member function defined outside its class
        ("rust", "statements.rs", True),
        ("swift", "statements.swift", True),
        ("kotlin", "to_string.kt", False),
        ("scala", "to_string.scala", False),
        ("lua", "stack_push.lua", False),
    ],
)
def test_snippets_that_need_a_wrapper_get_one(language, file, wrapped):
    code = dict(EXAMPLES[language])[file]
    tree = parse(code, language, strict=True)
    assert (tree.wrapper is not None) == wrapped
    assert not any("_codeprobe" in t.lower() for t in tree.tokens().texts)
    assert tree.end_byte.max() <= len(code.encode())


def test_identifier_types_give_same_name_edges():
    from codeprobe.syntax import uast_edges

    for language, code, name in [
        ("swift", "func f(x: Int) -> Int {\n    let y = x\n    return y + x\n}", "x"),
        ("bash", 'f() {\n  n="$1"\n  echo "$n"\n}', "n"),
        ("php", "function f($x) {\n    $y = $x;\n    return $x;\n}", "x"),
    ]:
        toks = parse(code, language).tokens()
        edges = {tuple(e) for e in uast_edges(toks).tolist() if e[1] != e[0] + 1}
        assert any(toks.texts[i] == toks.texts[j] == name for i, j in edges), language


# Real code: (language, where, function node types). `where` is a file in tests/syntax/real or
# (module, glob) inside an installed package.
FUNCTIONS = {
    "c": ("function_definition",),
    "cpp": ("function_definition",),
    "csharp": ("method_declaration", "constructor_declaration", "local_function_statement"),
    "rust": ("function_item",),
    "typescript": ("function_declaration", "method_definition", "arrow_function"),
    "tsx": ("function_declaration", "arrow_function"),
    "kotlin": ("function_declaration",),
    "swift": ("function_declaration",),
    "bash": ("function_definition",),
    "lua": ("chunk",),  # docket's Lua files are scripts: each whole file is the unit
}
REAL_SOURCES = [
    ("c", ("markupsafe", "_speedups.c")),
    ("cpp", ("greenlet", "CObjects.cpp")),
    ("cpp", ("greenlet", "PyGreenletUnswitchable.cpp")),
    ("lua", ("docket", "lua/c*.lua")),
    ("bash", ("tqdm", "completion.sh")),
    ("csharp", "Find-VisualStudio.cs"),
    ("rust", "eval.rs"),
    ("typescript", "store.ts"),
    ("tsx", "toast-bar.tsx"),
    ("kotlin", "HapticsModule.kt"),
    ("swift", "HapticsModule.swift"),
]


def real_files(where) -> list[Path]:
    if isinstance(where, str):
        return [REAL / where]
    module, pattern = where
    found = importlib.util.find_spec(module)
    if found is None or found.origin is None:
        pytest.skip(f"{module} is not installed")
    files = sorted(Path(found.origin).parent.glob(pattern))
    if not files:
        pytest.skip(f"{module} ships no {pattern}")
    return files


@pytest.mark.parametrize("language, where", REAL_SOURCES, ids=lambda x: x if isinstance(x, str) else x[-1])
def test_real_code_matches_networkx(language, where):
    checked = 0
    for path in real_files(where):
        assert language_for_path(path.name) == language
        text = path.read_text(encoding="utf-8")
        tree = parse(text, language)
        units = [i for i in range(tree.n_nodes) if tree.types[i] in FUNCTIONS[language]][:12]
        for i in units:
            code = tree.node_text(i)
            assert not parse(code, language).issues, code[:200]
            check_against_oracle(code, language)
            checked += 1
    assert checked
