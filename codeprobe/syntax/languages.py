"""The grammar registry: language names, their pinned tree-sitter grammar wheels, and wrappers.

Real snippets are functions, not files. Some grammars only accept a whole file (PHP needs
`<?php`), and a method may need a class around it. A `Wrapper` is text put around the user's
code before parsing; the tree module then cuts the wrapper's own nodes away again, so offsets
and tokens refer to the user's text only.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from functools import lru_cache

import tree_sitter

from codeprobe.errors import UnknownLanguageError


@dataclass(frozen=True)
class Wrapper:
    """Text placed around a snippet so that the grammar accepts it.

    `always` wrappers are used unless the code already starts with `skip_if_prefix`; the others
    are tried only when the bare snippet has parse errors, and kept only if they remove some.
    """

    prefix: str
    suffix: str = ""
    always: bool = False
    skip_if_prefix: str | None = None


@dataclass(frozen=True)
class GrammarInfo:
    """Which grammar parsed a snippet: recorded with every result, since grammar versions
    change leaf types (and so the numbers)."""

    language: str
    package: str
    package_version: str
    abi_version: int


@dataclass(frozen=True)
class _Entry:
    module: str
    package: str
    function: str = "language"
    wrappers: tuple[Wrapper, ...] = ()


# The six languages of CodeSearchNet, plus those whose pinned grammar wheels ship with codeprobe.
_REGISTRY: dict[str, _Entry] = {
    "python": _Entry(
        "tree_sitter_python",
        "tree-sitter-python",
        # An indented method cut out of a class body.
        wrappers=(Wrapper("class _codeprobe_wrapper_:\n"),),
    ),
    "java": _Entry(
        "tree_sitter_java",
        "tree-sitter-java",
        # A method or constructor outside its class.
        wrappers=(Wrapper("class _CodeprobeWrapper_ {\n", "\n}"),),
    ),
    "javascript": _Entry(
        "tree_sitter_javascript",
        "tree-sitter-javascript",
        # A class method (`foo(a) { ... }`) outside its class.
        wrappers=(Wrapper("class _CodeprobeWrapper_ {\n", "\n}"),),
    ),
    "go": _Entry(
        "tree_sitter_go",
        "tree-sitter-go",
        # A bare statement list, as some datasets cut function bodies.
        wrappers=(Wrapper("func _codeprobe_wrapper_() {\n", "\n}"),),
    ),
    "php": _Entry(
        "tree_sitter_php",
        "tree-sitter-php",
        function="language_php",
        wrappers=(
            Wrapper("<?php\n", always=True, skip_if_prefix="<?php"),
            # A method outside its class (with its `public` modifier).
            Wrapper("<?php\nclass _CodeprobeWrapper_ {\n", "\n}"),
        ),
    ),
    "ruby": _Entry("tree_sitter_ruby", "tree-sitter-ruby"),
}

_ALIASES = {"py": "python", "js": "javascript", "golang": "go", "rb": "ruby"}


def known_languages() -> tuple[str, ...]:
    """Names accepted by `parse`, sorted."""
    return tuple(sorted(_REGISTRY))


def canonical_language(name: str) -> str:
    """Map a user-facing name (case-insensitive, with a few aliases) to the registry's key.

    Raises:
        UnknownLanguageError: no grammar is registered under that name.
    """
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        raise UnknownLanguageError(
            f"unknown language {name!r}; known: {', '.join(known_languages())}"
        )
    return key


@lru_cache(maxsize=None)
def ts_language(language: str) -> tree_sitter.Language:
    """The tree-sitter `Language` object for a canonical language name."""
    entry = _REGISTRY[canonical_language(language)]
    module = importlib.import_module(entry.module)
    return tree_sitter.Language(getattr(module, entry.function)())


@lru_cache(maxsize=None)
def grammar_info(language: str) -> GrammarInfo:
    """Name, pinned wheel version and ABI of the grammar behind `language`."""
    key = canonical_language(language)
    entry = _REGISTRY[key]
    return GrammarInfo(
        language=key,
        package=entry.package,
        package_version=importlib.metadata.version(entry.package),
        abi_version=ts_language(key).abi_version,
    )


def wrappers(language: str) -> tuple[Wrapper, ...]:
    """The wrappers `parse` may put around a snippet of `language`, in the order tried."""
    return _REGISTRY[canonical_language(language)].wrappers


ERROR_KIND = 0xFFFF  # tree-sitter's symbol id of ERROR nodes
ERROR_TYPE = "ERROR"


@dataclass(frozen=True, eq=False)
class TypeTable:
    """Every node type of one grammar, shared by all its trees.

    Attributes:
        names: distinct type names (aliases share one), ERROR last.
        of_kind: int32 (65536,), index into `names` of each tree-sitter symbol id.
        named: bool (len(names),), whether a type is a named node type.
    """

    names: tuple[str, ...]
    of_kind: object  # np.ndarray; typed loosely to keep numpy out of this module's API
    named: object


@lru_cache(maxsize=None)
def type_table(language: str) -> TypeTable:
    """The `TypeTable` of `language`'s grammar (built once per process)."""
    import numpy as np

    lang = ts_language(language)
    kinds = list(range(lang.node_kind_count)) + [ERROR_KIND]
    kind_names = [lang.node_kind_for_id(k) if k != ERROR_KIND else ERROR_TYPE for k in kinds]
    names = tuple(dict.fromkeys(n for n in kind_names if n is not None))
    position = {name: i for i, name in enumerate(names)}
    of_kind = np.zeros(ERROR_KIND + 1, dtype=np.int32)
    named = np.zeros(len(names), dtype=bool)
    for kind, name in zip(kinds, kind_names):
        if name is None:
            continue
        of_kind[kind] = position[name]
        named[position[name]] |= kind == ERROR_KIND or lang.node_kind_is_named(kind)
    return TypeTable(names=names, of_kind=of_kind, named=named)
