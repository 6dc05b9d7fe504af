"""Small hand-written functions, one or more per language, as real code looks.

SNIPPETS: the six CodeSearchNet languages' hand-written functions (tests rely on their exact
text), plus every other language's examples from the top-level data/ folder.
EXAMPLES: language -> ((file name, code), ...) of every file in data/, the README's examples.
"""

from pathlib import Path

from codeprobe.syntax import language_for_path

DATA = Path(__file__).resolve().parents[2] / "data"


def _examples() -> dict[str, tuple[tuple[str, str], ...]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(DATA.glob("*/*")):
        if path.suffix != ".md":
            out.setdefault(path.parent.name, []).append((path.name, path.read_text(encoding="utf-8")))
            assert language_for_path(path.name) in (path.parent.name, "c"), path  # .h is C's
    return {language: tuple(files) for language, files in out.items()}


EXAMPLES = _examples()

SNIPPETS = {
    "python": [
        "def maximum(a, b):\n    if a > b:\n        return a\n    return b\n",
        'def greet(name):\n    # say hello\n    msg = f"hi {name}!"\n    return msg.upper()\n',
    ],
    "java": [
        "public int add(int a, int b) {\n    // sum\n    return a + b;\n}",
        '@Override\npublic String toString() { return "P(" + x + ")"; }',
    ],
    "javascript": [
        "function sum(xs) {\n  let s = 0;\n  for (const x of xs) { s += x; }\n  return s; // total\n}",
        "const f = (a, b) => `${a}-${b}`;",
    ],
    "go": [
        "func Max(a, b int) int {\n\tif a > b {\n\t\treturn a\n\t}\n\treturn b\n}",
        'func (p *Point) String() string { return fmt.Sprintf("%d", p.X) }',
    ],
    "php": [
        "function add($a, $b) {\n    return $a + $b; # plus\n}",
        "public function getName() { return $this->name; }",
    ],
    "ruby": [
        "def max(a, b)\n  a > b ? a : b\nend",
        'def greet(name)\n  puts "hi #{name}" # out\nend',
    ],
}
SNIPPETS.update({lang: [code for _, code in files] for lang, files in EXAMPLES.items() if lang not in SNIPPETS})
