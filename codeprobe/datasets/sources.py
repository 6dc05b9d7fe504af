"""Functions extracted with tree-sitter from source files: a directory, a git checkout, one
file, or the running interpreter's standard library.

A function is the exact source span of its node, as CodeSearchNet cuts them: a method's first
line therefore starts at `def` / its modifiers, without the indentation it had in its class.
Only outermost functions are kept (methods count: a class is not a function); a function nested
in another is part of that one's code, not a snippet of its own.

Files are listed once, sorted by relative path, and read one at a time: the stream is lazy and
its order is the same on every machine with the same files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path

import tree_sitter

from codeprobe.datasets.snippet import SkipCounter, Snippet, text_problem
from codeprobe.syntax.languages import canonical_language, ts_language

# File extension -> language. `.pyi` stubs are left out: their functions have no bodies.
EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".java": "java",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".go": "go",
    ".php": "php",
    ".rb": "ruby",
}

# Function-like nodes per language, as tree-sitter queries capturing `@fn`. JavaScript also
# counts a declaration or assignment whose value is an arrow function or a function expression
# (`const f = (x) => ...`, `exports.f = function () {...}`): the snippet is the whole statement.
_FUNCTION_QUERIES = {
    "python": "(function_definition) @fn",
    "java": "(method_declaration) @fn (constructor_declaration) @fn",
    "javascript": """
        (function_declaration) @fn
        (generator_function_declaration) @fn
        (method_definition) @fn
        (lexical_declaration
          (variable_declarator value: [(arrow_function) (function_expression)])) @fn
        (variable_declaration
          (variable_declarator value: [(arrow_function) (function_expression)])) @fn
        (expression_statement
          (assignment_expression right: [(arrow_function) (function_expression)])) @fn
    """,
    "go": "(function_declaration) @fn (method_declaration) @fn",
    "php": "(function_definition) @fn (method_declaration) @fn",
    "ruby": "(method) @fn (singleton_method) @fn",
}
# Enclosing nodes whose `name` goes into a function's qualified name.
_CONTAINERS = {
    "python": {"class_definition"},
    "java": {"class_declaration", "interface_declaration", "enum_declaration", "record_declaration"},
    "javascript": {"class_declaration", "class"},
    "go": set(),
    "php": {"class_declaration", "interface_declaration", "trait_declaration", "enum_declaration"},
    "ruby": {"class", "module"},
}
# Grammars where a declaration may lack a body (abstract/interface methods, external funcs).
# (A Ruby method with an empty body has no body node either, so Ruby is not in this set.)
_BODY_REQUIRED = {"java", "go", "php"}
_JS_FUNCTION_VALUES = {"arrow_function", "function_expression"}

# Directories never walked: VCS metadata and caches (hidden names are skipped too).
_SKIP_DIRS = frozenset({"__pycache__", "node_modules"})
# In the standard library, also its own tests and the third-party packages installed beside it.
_STDLIB_SKIP_DIRS = _SKIP_DIRS | {"test", "tests", "idle_test", "site-packages", "dist-packages"}

DEFAULT_MAX_FILE_BYTES = 2_000_000


def language_of_file(path: str | os.PathLike) -> str | None:
    """The language a source file's extension implies, or None."""
    return EXTENSIONS.get(Path(path).suffix.lower())


def stdlib_root() -> Path:
    """The running interpreter's standard library directory."""
    return Path(sysconfig.get_paths()["stdlib"])


def extract_functions(
    code: str, language: str, *, name: str, counter: SkipCounter, location: str | None = None
) -> list[Snippet]:
    """The outermost functions and methods of one source text, in source order.

    Args:
        code: the whole file's text.
        language: its language.
        name: the file's name in ids, usually its path relative to the dataset root.
        counter: counts every function found (`count_read`) and those skipped (`empty`,
            `no_body`).
        location: the file in `Snippet.source` (default: `name`).

    Returns:
        Snippets with ids `<name>::<qualified name>:<line>` (a column is added in the rare case
        two functions of the same name start on one line) and sources `<location>:<line>`.
    """
    language = canonical_language(language)
    source = code.encode("utf-8")
    tree = tree_sitter.Parser(ts_language(language)).parse(source)
    captured = tree_sitter.QueryCursor(_query(language)).captures(tree.root_node).get("fn", [])
    # Nodes nest or are disjoint: sorted by start (outer first), a node that starts before the
    # current outermost one ends lies inside it.
    nodes = sorted({(n.start_byte, -n.end_byte): n for n in captured}.items())
    location = location or name
    snippets: list[Snippet] = []
    ids: set[str] = set()
    outer_end = -1
    for (start, neg_end), node in nodes:
        if start < outer_end:
            continue
        outer_end = -neg_end
        counter.count_read()
        line = node.start_point.row + 1
        qualname = _qualified_name(node, language)
        ident = f"{name}::{qualname}:{line}"
        if ident in ids:
            ident = f"{ident}:{node.start_point.column + 1}"
        ids.add(ident)
        if language in _BODY_REQUIRED and node.child_by_field_name("body") is None:
            counter.skip("no_body", ident)
            continue
        text = source[start:outer_end].decode("utf-8")
        problem = text_problem(text)
        if problem is not None:
            counter.skip(problem[0], ident, problem[1])
            continue
        snippets.append(Snippet(id=ident, language=language, code=text, source=f"{location}:{line}"))
    return snippets


def source_files(root: Path, languages: Iterable[str], *, stdlib: bool = False) -> list[tuple[str, Path]]:
    """(relative posix path, path) of every source file under `root` in `languages`, sorted.

    A git checkout (a `.git` directory at `root`) lists its tracked files, so build outputs and
    ignored files stay out; any other directory is walked, skipping hidden directories, caches,
    and for the standard library its test directories and site-packages. Symbolic links to
    directories are not followed.
    """
    wanted = {ext for ext, lang in EXTENSIONS.items() if lang in set(languages)}
    skip_dirs = _STDLIB_SKIP_DIRS if stdlib else _SKIP_DIRS
    relative = _git_files(root) if (root / ".git").exists() else None
    if relative is None:
        relative = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in skip_dirs and not d.startswith(".")]
            rel_dir = Path(dirpath).relative_to(root)
            relative.extend((rel_dir / f).as_posix() for f in filenames)
    files = [(rel, root / rel) for rel in relative if Path(rel).suffix.lower() in wanted and (root / rel).is_file()]
    return sorted(files)


def directory_snippets(
    root: Path,
    languages: Iterable[str],
    *,
    counter: SkipCounter,
    stdlib: bool = False,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> Iterator[Snippet]:
    """Functions of every source file under `root` (see `source_files`), file by file."""
    for rel, path in source_files(root, languages, stdlib=stdlib):
        yield from file_snippets(path, name=rel, counter=counter, max_file_bytes=max_file_bytes)


def file_snippets(
    path: Path, *, name: str, counter: SkipCounter, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> list[Snippet]:
    """Functions of one source file, language from its extension. A file that cannot be used
    (unreadable, over `max_file_bytes`, not UTF-8) counts as one row read and skipped."""
    language = language_of_file(path)
    assert language is not None, path
    try:
        size = path.stat().st_size
        data = path.read_bytes() if size <= max_file_bytes else b""
    except OSError as err:
        counter.count_read()
        counter.skip("unreadable", name, err.strerror)
        return []
    if size > max_file_bytes:
        counter.count_read()
        counter.skip("file_too_large", name, f"{size} bytes > {max_file_bytes}")
        return []
    try:
        code = data.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as err:
        counter.count_read()
        counter.skip("invalid_utf8", name, f"byte {err.start}")
        return []
    if "\x00" in code:
        counter.count_read()
        counter.skip("binary", name, "NUL in file")
        return []
    return extract_functions(code, language, name=name, counter=counter, location=str(path))


def _git_files(root: Path) -> list[str] | None:
    """Tracked files of the checkout at `root`, or None when git cannot list them."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        out = subprocess.run(
            [git, "-C", str(root), "ls-files", "-z", "--cached"],
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]


@cache
def _query(language: str) -> tree_sitter.Query:
    return tree_sitter.Query(ts_language(language), _FUNCTION_QUERIES[language])


def _qualified_name(node: tree_sitter.Node, language: str) -> str:
    parts = [_function_name(node, language)]
    containers = _CONTAINERS[language]
    parent = node.parent
    while parent is not None:
        if parent.type in containers:
            name = parent.child_by_field_name("name")
            if name is not None:
                parts.append(_text(name))
        parent = parent.parent
    return ".".join(reversed(parts))


def _function_name(node: tree_sitter.Node, language: str) -> str:
    if node.type in ("lexical_declaration", "variable_declaration"):
        for declarator in node.named_children:
            value = declarator.child_by_field_name("value")
            if value is not None and value.type in _JS_FUNCTION_VALUES:
                return _text(declarator.child_by_field_name("name"))
    if node.type == "expression_statement":
        return _text(node.named_children[0].child_by_field_name("left"))
    name = _text(node.child_by_field_name("name"))
    if node.type == "singleton_method":  # def self.foo / def obj.foo
        return f"{_text(node.child_by_field_name('object'))}.{name}"
    if language == "go" and node.type == "method_declaration":  # func (r *T) M()
        receiver = node.child_by_field_name("receiver")
        children = receiver.named_children if receiver is not None else []
        params = [c for c in children if c.type == "parameter_declaration"]
        rtype = params[0].child_by_field_name("type") if params else None
        if rtype is not None:
            return f"{_text(rtype).lstrip('*').split('[')[0]}.{name}"
    return name


def _text(node: tree_sitter.Node | None) -> str:
    if node is None:
        return "<anonymous>"
    return " ".join(node.text.decode("utf-8", "replace").split())
