"""Small hand-written functions, one or more per language, as real code looks."""

SNIPPETS = {
    "python": [
        "def maximum(a, b):\n    if a > b:\n        return a\n    return b\n",
        "def greet(name):\n    # say hello\n    msg = f\"hi {name}!\"\n    return msg.upper()\n",
    ],
    "java": [
        "public int add(int a, int b) {\n    // sum\n    return a + b;\n}",
        "@Override\npublic String toString() { return \"P(\" + x + \")\"; }",
    ],
    "javascript": [
        "function sum(xs) {\n  let s = 0;\n  for (const x of xs) { s += x; }\n  return s; // total\n}",
        "const f = (a, b) => `${a}-${b}`;",
    ],
    "go": [
        "func Max(a, b int) int {\n\tif a > b {\n\t\treturn a\n\t}\n\treturn b\n}",
        "func (p *Point) String() string { return fmt.Sprintf(\"%d\", p.X) }",
    ],
    "php": [
        "function add($a, $b) {\n    return $a + $b; # plus\n}",
        "public function getName() { return $this->name; }",
    ],
    "ruby": [
        "def max(a, b)\n  a > b ? a : b\nend",
        "def greet(name)\n  puts \"hi #{name}\" # out\nend",
    ],
}
