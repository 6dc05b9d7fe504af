"""The grammar registry: one declarative entry per language, nothing language-specific elsewhere.

An entry names the pinned tree-sitter grammar wheel, the file extensions that imply the language,
the wrappers that let a grammar accept a snippet cut out of a file, and which node types are
comments, strings and identifiers. Adding a language is adding an entry (and its tests).

Real snippets are functions, not files. A method may need its class around it, and PHP's grammar
reads text without an open tag as inline HTML. A `Wrapper` is text put around the user's code
before parsing; `parse` tries the bare text first and keeps a wrapped parse only when it is
strictly better and the user's text consumed none of the wrapper (`codeprobe.syntax.parsing`).
`codeprobe.syntax.wrapped` then cuts the wrapper's own nodes away, so offsets and tokens refer
to the user's text only.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from functools import cache
from pathlib import PurePath

import tree_sitter

from codeprobe.errors import UnknownLanguageError


@dataclass(frozen=True)
class Wrapper:
    """Text placed around a snippet so that the grammar accepts it.

    `holder` is the wrapper's node type that holds the user's code without any wrapper token of
    its own (a Python class `block`, a Go `statement_list`): it spans only the user's text, so it
    is cut away by name, and a wrapped tree is node for node the tree of the same code parsed
    bare.
    """

    prefix: str
    suffix: str = ""
    holder: str | None = None


@dataclass(frozen=True)
class GrammarInfo:
    """Which grammar parsed a snippet: recorded with every result, since grammar versions
    change leaf types (and so the numbers)."""

    language: str
    package: str
    package_version: str
    abi_version: int


@dataclass(frozen=True)
class LanguageSpec:
    """One registry entry.

    Attributes:
        name: canonical language name (the registry key).
        package: the grammar's PyPI distribution (pinned in pyproject.toml).
        module, function: the Python module of the wheel and its function returning the grammar.
        extensions: file suffixes (lower case, with the dot) that imply this language.
        aliases: other names accepted for it (lower case).
        wrappers: tried in order when the bare text does not parse cleanly.
        comments: node types that are comments (dropped from the tokens with all they contain).
            For every registered grammar these are exactly the types whose name contains
            "comment", the rule of both specs (arXiv:2202.08975, arXiv:2210.04633).
        strings: node types made one token by `collapse_strings` (AST-Probe, arXiv:2202.08975:
            `string` or a name containing `string_literal`).
        identifiers: leaf types joined to the previous leaf of one of these types with the same
            text in the U-AST (CAT-probing's def-use edges, arXiv:2210.04633). The original
            code used `identifier`; grammars that name their identifiers otherwise list theirs.
        code_marker: a node type without which a parse has found no code at all: PHP's grammar
            reads text without an open tag as inline HTML, cleanly. A parse that lacks it ranks
            below any parse that has it, whatever their issues: a snippet without `<?php` is
            taken as PHP code (what code datasets hold), and a file of pure HTML, which holds no
            PHP code to probe, is reported with issues.
    """

    name: str
    package: str
    module: str
    function: str = "language"
    extensions: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    wrappers: tuple[Wrapper, ...] = ()
    comments: tuple[str, ...] = ("comment",)
    strings: tuple[str, ...] = ("string",)
    identifiers: tuple[str, ...] = ("identifier",)
    code_marker: str | None = None


# CodeSearchNet's six languages first, then the other grammars code-model research uses.
_SPECS = (
    LanguageSpec(
        "python",
        "tree-sitter-python",
        "tree_sitter_python",
        extensions=(".py", ".pyi"),
        aliases=("py",),
        # An indented method cut out of a class body.
        wrappers=(Wrapper("class _codeprobe_wrapper_:\n", holder="block"),),
    ),
    LanguageSpec(
        "java",
        "tree-sitter-java",
        "tree_sitter_java",
        extensions=(".java",),
        # A method or constructor outside its class.
        wrappers=(Wrapper("class _CodeprobeWrapper_ {\n", "\n}"),),
        comments=("block_comment", "line_comment"),
        strings=("string_literal",),
    ),
    LanguageSpec(
        "javascript",
        "tree-sitter-javascript",
        "tree_sitter_javascript",
        extensions=(".js", ".mjs", ".cjs", ".jsx"),
        aliases=("js", "node"),
        # A class method (`foo(a) { ... }`) outside its class.
        wrappers=(Wrapper("class _CodeprobeWrapper_ {\n", "\n}"),),
        comments=("comment", "html_comment"),
    ),
    LanguageSpec(
        "go",
        "tree-sitter-go",
        "tree_sitter_go",
        extensions=(".go",),
        aliases=("golang",),
        # A bare statement list, as some datasets cut function bodies.
        wrappers=(Wrapper("func _codeprobe_wrapper_() {\n", "\n}", holder="statement_list"),),
        strings=(
            "interpreted_string_literal",
            "interpreted_string_literal_content",
            "raw_string_literal",
            "raw_string_literal_content",
        ),
    ),
    LanguageSpec(
        "php",
        "tree-sitter-php",
        "tree_sitter_php",
        function="language_php",
        extensions=(".php", ".phtml"),
        wrappers=(
            Wrapper("<?php\n"),
            # A method outside its class (with its `public` modifier).
            Wrapper("<?php\nclass _CodeprobeWrapper_ {\n", "\n}"),
        ),
        identifiers=("name",),
        code_marker="php_tag",
    ),
    LanguageSpec(
        "ruby",
        "tree-sitter-ruby",
        "tree_sitter_ruby",
        extensions=(".rb",),
        aliases=("rb",),
    ),
    LanguageSpec(
        "c",
        "tree-sitter-c",
        "tree_sitter_c",
        extensions=(".c", ".h"),
        strings=("string_literal",),
    ),
    LanguageSpec(
        "cpp",
        "tree-sitter-cpp",
        "tree_sitter_cpp",
        extensions=(".cpp", ".cc", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".ipp"),
        aliases=("c++", "cxx"),
        # Members cut out of their class with an access label (`public: ...`). Member
        # functions defined outside their class (`int A::f() {...}`), constructors, virtual and
        # override members, and statement lists all parse bare.
        wrappers=(Wrapper("class _CodeprobeWrapper_ {\n", "\n};"),),
        strings=("raw_string_literal", "string_literal"),
    ),
    LanguageSpec(
        "csharp",
        "tree-sitter-c-sharp",
        "tree_sitter_c_sharp",
        extensions=(".cs",),
        aliases=("c#", "cs", "c_sharp", "c-sharp"),
        # A method, constructor or property outside its class.
        wrappers=(Wrapper("class _CodeprobeWrapper_ {\n", "\n}"),),
        strings=(
            "raw_string_literal",
            "string_literal",
            "string_literal_content",
            "string_literal_encoding",
            "verbatim_string_literal",
        ),
    ),
    LanguageSpec(
        "rust",
        "tree-sitter-rust",
        "tree_sitter_rust",
        extensions=(".rs",),
        aliases=("rs",),
        # A statement list cut out of a function body (methods taking `self` parse bare).
        wrappers=(Wrapper("fn _codeprobe_wrapper_() {\n", "\n}"),),
        comments=(
            "block_comment",
            "doc_comment",
            "inner_doc_comment_marker",
            "line_comment",
            "outer_doc_comment_marker",
        ),
        strings=("raw_string_literal", "string_literal"),
    ),
    LanguageSpec(
        "typescript",
        "tree-sitter-typescript",
        "tree_sitter_typescript",
        function="language_typescript",
        extensions=(".ts", ".mts", ".cts"),
        aliases=("ts",),
        # A class method (with its modifiers and types) outside its class.
        wrappers=(Wrapper("class _CodeprobeWrapper_ {\n", "\n}"),),
        comments=("comment", "html_comment"),
    ),
    LanguageSpec(
        "tsx",
        "tree-sitter-typescript",
        "tree_sitter_typescript",
        function="language_tsx",
        extensions=(".tsx",),
        wrappers=(Wrapper("class _CodeprobeWrapper_ {\n", "\n}"),),
        comments=("comment", "html_comment"),
    ),
    LanguageSpec(
        "kotlin",
        "tree-sitter-kotlin",
        "tree_sitter_kotlin",
        extensions=(".kt", ".kts"),
        aliases=("kt",),
        # A method (`override fun ...`) or secondary constructor outside its class.
        wrappers=(Wrapper("class _CodeprobeWrapper_ {\n", "\n}"),),
        comments=("block_comment", "line_comment"),
        strings=("multiline_string_literal", "string_literal"),
    ),
    LanguageSpec(
        "scala",
        "tree-sitter-scala",
        "tree_sitter_scala",
        extensions=(".scala", ".sc"),
        # Methods (`override def ...`), secondary constructors and statements all parse bare.
        comments=("block_comment", "comment", "xml_comment"),
    ),
    LanguageSpec(
        "swift",
        "tree-sitter-swift",
        "tree_sitter_swift",
        extensions=(".swift",),
        # A member (a subscript, say) outside its type; a statement list cut out of a function
        # body (methods, initializers and computed properties parse bare).
        wrappers=(
            Wrapper("class _CodeprobeWrapper_ {\n", "\n}"),
            Wrapper("func _codeprobe_wrapper_() {\n", "\n}", holder="statements"),
        ),
        comments=("comment", "multiline_comment"),
        strings=("line_string_literal", "multi_line_string_literal", "raw_string_literal"),
        identifiers=("simple_identifier",),
    ),
    LanguageSpec(
        "bash",
        "tree-sitter-bash",
        "tree_sitter_bash",
        extensions=(".sh", ".bash"),
        aliases=("sh", "shell"),
        # A variable's name is `variable_name` wherever it is set or read (`x=1`, `$x`).
        identifiers=("variable_name",),
    ),
    LanguageSpec(
        "lua",
        "tree-sitter-lua",
        "tree_sitter_lua",
        extensions=(".lua",),
        comments=("comment", "comment_content"),
    ),
)

_REGISTRY: dict[str, LanguageSpec] = {spec.name: spec for spec in _SPECS}
_NAMES: dict[str, str] = {alias: spec.name for spec in _SPECS for alias in (spec.name, *spec.aliases)}
_EXTENSIONS: dict[str, str] = {ext: spec.name for spec in _SPECS for ext in spec.extensions}


def known_languages() -> tuple[str, ...]:
    """Names accepted by `parse`, sorted."""
    return tuple(sorted(_REGISTRY))


def grammar_packages() -> tuple[str, ...]:
    """The PyPI names of every registered grammar wheel, sorted (for provenance records)."""
    return tuple(sorted({spec.package for spec in _SPECS}))


def canonical_language(name: str) -> str:
    """Map a user-facing name (case-insensitive, with a few aliases) to the registry's key.

    Raises:
        UnknownLanguageError: no grammar is registered under that name.
    """
    key = str(name).strip().lower()
    if key not in _NAMES:
        raise UnknownLanguageError(f"unknown language {name!r}; known: {', '.join(known_languages())}")
    return _NAMES[key]


def language_for_path(path: str) -> str | None:
    """The language a file name's extension implies (case-insensitive), or None."""
    return _EXTENSIONS.get(PurePath(path).suffix.lower())


def language_spec(language: str) -> LanguageSpec:
    """The registry entry of `language` (any accepted name)."""
    return _REGISTRY[canonical_language(language)]


@cache
def ts_language(language: str) -> tree_sitter.Language:
    """The tree-sitter `Language` object for a canonical language name."""
    spec = language_spec(language)
    module = importlib.import_module(spec.module)
    return tree_sitter.Language(getattr(module, spec.function)())


@cache
def grammar_info(language: str) -> GrammarInfo:
    """Name, pinned wheel version and ABI of the grammar behind `language`."""
    spec = language_spec(language)
    return GrammarInfo(
        language=spec.name,
        package=spec.package,
        package_version=importlib.metadata.version(spec.package),
        abi_version=ts_language(spec.name).abi_version,
    )


@cache
def keywords(language: str) -> tuple[str, ...]:
    """The grammar's keywords, sorted: its visible anonymous node types that are identifiers
    (`if`, `def`, `return`, ...). Taken from the grammar, not a hand-written list, so every
    registered language has one; a grammar's contextual words (Python's `print`, `exec`; Rust's
    macro fragment kinds `expr`, `ty`) are among them, as the grammar defines them."""
    lang = ts_language(language_spec(language).name)
    return tuple(
        sorted(
            {
                lang.node_kind_for_id(i)
                for i in range(lang.node_kind_count)
                if not lang.node_kind_is_named(i)
                and lang.node_kind_is_visible(i)
                and lang.node_kind_for_id(i).isidentifier()
            }
        )
    )


def wrappers(language: str) -> tuple[Wrapper, ...]:
    """The wrappers `parse` may put around a snippet of `language`, in the order tried."""
    return language_spec(language).wrappers


ERROR_KIND = 0xFFFF  # tree-sitter's symbol id of ERROR nodes
ERROR_TYPE = "ERROR"


@dataclass(frozen=True, eq=False)
class TypeTable:
    """Every node type of one grammar, shared by all its trees.

    Attributes:
        names: distinct type names (aliases share one), ERROR last.
        of_kind: int32 (65536,), index into `names` of each tree-sitter symbol id.
        named: bool (len(names),), whether a type is a named node type (a name that is both,
            like Python's `lambda` node and `lambda` keyword, counts as named).
        kind_named: bool (65536,), whether each tree-sitter symbol id is a named node (exact,
            where `named` is not).
        comment, string, identifier: bool (len(names),), the entry's `comments`, `strings` and
            `identifiers`.
        marker: index into `names` of the entry's `code_marker`, or -1.
        fields: the grammar's field names (`condition`, `body`, ...), indexed by tree-sitter's
            field id; "" at 0, which means no field.
    """

    names: tuple[str, ...]
    of_kind: object  # np.ndarray; typed loosely to keep numpy out of this module's API
    named: object
    comment: object
    string: object
    identifier: object
    marker: int
    kind_named: object = None
    fields: tuple[str, ...] = ("",)


@cache
def type_table(language: str) -> TypeTable:
    """The `TypeTable` of `language`'s grammar (built once per process)."""
    import numpy as np

    spec = language_spec(language)
    lang = ts_language(spec.name)
    kinds = list(range(lang.node_kind_count)) + [ERROR_KIND]
    kind_names = [lang.node_kind_for_id(k) if k != ERROR_KIND else ERROR_TYPE for k in kinds]
    names = tuple(dict.fromkeys(n for n in kind_names if n is not None))
    position = {name: i for i, name in enumerate(names)}
    of_kind = np.zeros(ERROR_KIND + 1, dtype=np.int32)
    named = np.zeros(len(names), dtype=bool)
    kind_named = np.zeros(ERROR_KIND + 1, dtype=bool)
    for kind, name in zip(kinds, kind_names):
        if name is None:
            continue
        of_kind[kind] = position[name]
        kind_named[kind] = kind == ERROR_KIND or lang.node_kind_is_named(kind)
        named[position[name]] |= kind_named[kind]

    def mask(types: tuple[str, ...]) -> np.ndarray:
        out = np.zeros(len(names), dtype=bool)
        out[[position[t] for t in types if t in position]] = True
        return out

    return TypeTable(
        names=names,
        of_kind=of_kind,
        named=named,
        comment=mask(spec.comments),
        string=mask(spec.strings),
        identifier=mask(spec.identifiers),
        marker=position.get(spec.code_marker, -1) if spec.code_marker else -1,
        kind_named=kind_named,
        fields=("", *(lang.field_name_for_id(f) or "" for f in range(1, lang.field_count + 1))),
    )
