"""Fuzz the syntax core: mutated real code in every language, and junk, through parse, tokens and
both distance matrices.

Inputs (seeded): the project's examples (data/) and the real files of tests/syntax/real, in
every registered language, mutated by random bytes, truncation, single-character deletion,
insertion and duplication, removed or doubled brackets and quotes, deep nesting, mixed line
endings, byte-order marks, control characters, NULs, invalid UTF-8 and huge tokens.

Invariants, per input:
- only codeprobe's typed errors (`CodeprobeError`) are raised, and within a time bound;
- the tree is well formed (parents first, depths, subtrees, spans inside the parent's) and
  every token's byte and character offsets slice the input to the token's text;
- both distance matrices are symmetric with a zero diagonal, U-AST <= AST distance, and on
  small inputs they equal the networkx reference;
- a wrapped parse equals the bare one node for node whenever both are clean.

Prints the count of each outcome and every violation; exits 1 if there was any. Not in CI (it
takes minutes); tests/syntax/test_fuzz.py runs a seeded few-hundred-case subset.

Usage: python benchmarks/fuzz_syntax.py [--cases 10000] [--seed 0] [--time-bound 5]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codeprobe.errors import CodeprobeError
from codeprobe.syntax import ast_distance, known_languages, language_for_path, parse, uast_distance
from codeprobe.syntax.languages import wrappers
from codeprobe.syntax.parsing import _CLEAN, _parse_with

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))  # the test oracles: tests/oracles/
from oracles.syntax import leaf_distances, oracle_graphs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SOURCES = (REPO / "data", REPO / "tests" / "syntax" / "real")
MAX_DISTANCE_TOKENS = 3000  # larger inputs are parsed and tokenized, not measured
MAX_ORACLE_TOKENS = 60  # networkx reference on inputs up to this size
ORACLE_SHARE = 0.1

BRACKETS = "{}()[]"
QUOTES = "\"'`"
CONTROLS = [chr(c) for c in range(1, 32) if chr(c) not in "\n\t"] + ["\x7f", "\x85"]
INSERTS = list(BRACKETS + QUOTES + ";:,.\\#$@<>=\n\t ") + ["x", "0", "é", "€", "𝄞", "\x1b", "\r", "\ufeff"]


def corpus() -> list[tuple[str, str]]:
    """(language, code) of every example and real file, sorted by path."""
    out = []
    for root in SOURCES:
        for path in sorted(root.rglob("*")):
            language = language_for_path(path.name)
            if path.is_file() and language is not None:
                if root.name == "data":
                    language = path.parent.name  # data/<language>/ (a .h file may be C++)
                out.append((language, path.read_text(encoding="utf-8")))
    return out


def _spot(rng: random.Random, code: str) -> int:
    return rng.randint(0, len(code))


def _nth(rng: random.Random, code: str, chars: str) -> int | None:
    spots = [i for i, c in enumerate(code) if c in chars]
    return rng.choice(spots) if spots else None


def m_identity(rng, code):
    return code


def m_random_bytes(rng, code):
    return rng.randbytes(rng.randint(1, 300))


def m_random_text(rng, code):
    return "".join(chr(rng.choice((rng.randint(32, 126), rng.randint(0, 0x2FFF)))) for _ in range(rng.randint(1, 200)))


def m_truncate(rng, code):
    return code[: _spot(rng, code)]


def m_delete_char(rng, code):
    i = rng.randrange(len(code))
    return code[:i] + code[i + 1 :]


def m_insert_char(rng, code):
    i = _spot(rng, code)
    return code[:i] + rng.choice(INSERTS) + code[i:]


def m_duplicate(rng, code):
    i = _spot(rng, code)
    j = min(len(code), i + rng.randint(1, 40))
    return code[:j] + code[i:j] + code[j:]


def m_remove_bracket(rng, code):
    i = _nth(rng, code, BRACKETS)
    return code if i is None else code[:i] + code[i + 1 :]


def m_double_bracket(rng, code):
    i = _nth(rng, code, BRACKETS)
    return code if i is None else code[:i] + code[i] + code[i:]


def m_remove_quote(rng, code):
    i = _nth(rng, code, QUOTES)
    return code if i is None else code[:i] + code[i + 1 :]


def m_double_quote(rng, code):
    i = _nth(rng, code, QUOTES)
    return code if i is None else code[:i] + code[i] + code[i:]


def m_deep_nesting(rng, code):
    depth = rng.randint(50, 1500)
    open_, close = rng.choice(["()", "[]", "{}"])
    i = _spot(rng, code)
    return code[:i] + open_ * depth + "x" + close * depth + code[i:]


def m_line_endings(rng, code):
    return "".join(rng.choice(("\n", "\r\n", "\r")) if c == "\n" else c for c in code)


def m_bom(rng, code):
    return "\ufeff" + code


def m_controls(rng, code):
    for _ in range(rng.randint(1, 4)):
        i = _spot(rng, code)
        code = code[:i] + rng.choice(CONTROLS) + code[i:]
    return code


def m_nul(rng, code):
    i = _spot(rng, code)
    return code[:i] + "\x00" + code[i:]


def m_invalid_utf8(rng, code):
    data = code.encode()
    i = rng.randint(0, len(data))
    return data[:i] + rng.choice((b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88")) + data[i:]


def m_huge_token(rng, code):
    size = rng.randint(20_000, 200_000)
    token = rng.choice(("x" * size, '"' + "a" * size + '"', "1" * size, "/*" + "c" * size + "*/"))
    i = _spot(rng, code)
    return code[:i] + " " + token + " " + code[i:]


def m_whitespace(rng, code):
    return rng.choice(("", " ", "\n\n", "\t \r\n", "\ufeff"))


MUTATIONS = {name[2:]: fn for name, fn in sorted(globals().items()) if name.startswith("m_")}


@dataclass(frozen=True)
class Case:
    index: int
    mutation: str
    language: str
    data: str | bytes


def cases(n: int, seed: int):
    """`n` seeded cases, cycling through the mutations over a shuffled corpus."""
    rng = random.Random(seed)
    seeds = corpus()
    names = list(MUTATIONS)
    languages = known_languages()
    for index in range(n):
        mutation = names[index % len(names)]
        language, code = rng.choice(seeds)
        if mutation in ("random_bytes", "random_text", "whitespace"):
            language = rng.choice(languages)
        yield Case(index, mutation, language, MUTATIONS[mutation](rng, code))


def check(case: Case, rng: random.Random, time_bound: float) -> tuple[str, list[str], list[str]]:
    """Run one case; returns (outcome, violations, context notes)."""
    problems: list[str] = []
    t0 = time.perf_counter()
    try:
        tree = parse(case.data, case.language)
        toks = tree.tokens()
        outcome = ("wrapped " if tree.wrapper else "bare ") + ("clean" if not tree.issues else "with issues")
        if len(toks) <= MAX_DISTANCE_TOKENS:
            ast, uast = ast_distance(toks), uast_distance(toks)
        else:
            ast = uast = None
    except CodeprobeError as err:
        return f"refused: {type(err).__name__}", _late(t0, time_bound), []
    except Exception as err:  # noqa: BLE001 - any untyped error is what we are looking for
        return "crashed", [f"untyped {type(err).__name__}: {err}"], []
    problems += _late(t0, time_bound)
    problems += _tree_problems(tree, toks)
    if ast is not None:
        problems += _distance_problems(ast, uast)
        if len(toks) <= MAX_ORACLE_TOKENS and rng.random() < ORACLE_SHARE:
            graph, ugraph, leaves = oracle_graphs(tree.code, tree.language, tree.wrapper)
            if not (
                np.array_equal(ast, leaf_distances(graph, leaves))
                and np.array_equal(uast, leaf_distances(ugraph, leaves))
            ):
                problems.append("distances differ from the networkx reference")
    wrapper_problems, notes = _wrapper_problems(tree)
    return outcome, problems + wrapper_problems, notes


def _late(t0: float, bound: float) -> list[str]:
    took = time.perf_counter() - t0
    return [f"took {took:.2f} s (bound {bound} s)"] if took > bound else []


def _tree_problems(tree, toks) -> list[str]:
    out = []
    n = tree.n_nodes
    p = tree.parent
    idx = np.arange(n)
    source = tree.source
    if p[0] != -1 or not (np.all(p[1:] >= 0) and np.all(p[1:] < idx[1:])):
        out.append("parent does not precede child")
    if n > 1 and not np.all(tree.depth[1:] == tree.depth[p[1:]] + 1):
        out.append("depth is not parent depth + 1")
    if not (np.all(tree.subtree_end > idx) and np.all(tree.subtree_end <= n)):
        out.append("bad subtree_end")
    if n > 1 and not (
        np.all(tree.start_byte[1:] >= tree.start_byte[p[1:]]) and np.all(tree.end_byte[1:] <= tree.end_byte[p[1:]])
    ):
        out.append("child span outside its parent's")
    if tree.end_byte.max(initial=0) > len(source) or tree.start_byte.min(initial=0) < 0:
        out.append("span outside the input")
    s, e = toks.start_byte, toks.end_byte
    if len(toks) and not (np.all(e > s) and np.all(s[1:] >= e[:-1])):
        out.append("tokens empty or overlapping")
    code = tree.code
    for text, sb, eb, sc, ec in zip(
        toks.texts, s.tolist(), e.tolist(), toks.start_char.tolist(), toks.end_char.tolist()
    ):
        if source[sb:eb].decode("utf-8") != text or code[sc:ec] != text:
            out.append(f"token offsets do not slice the input to {text[:40]!r}")
            break
    return out


def _distance_problems(ast, uast) -> list[str]:
    out = []
    for name, d in (("AST", ast), ("U-AST", uast)):
        if not np.array_equal(d, d.T):
            out.append(f"{name} distances not symmetric")
        if np.any(np.diag(d) != 0):
            out.append(f"{name} diagonal not zero")
        if d.shape[0] > 1 and (d + np.eye(d.shape[0], dtype=d.dtype)).min() < 1:
            out.append(f"{name} off-diagonal distance below 1")
    if np.any(uast > ast):
        out.append("U-AST distance above AST distance")
    return out


def _wrapper_problems(tree) -> tuple[list[str], list[str]]:
    """(violations, context notes). A clean wrapped parse must be the clean bare parse node for
    node. Where the grammar reads the same text as other node types inside the wrapper (a C#
    method is a local function at top level), that is the grammar's context, not a fault of
    the cut: it is counted, and the structure is compared only when the types agree."""
    source = tree.source
    bare, rank = _parse_with(tree.code, source, tree.language, None)
    if rank != _CLEAN:
        return [], []
    out, notes = [], []
    for wrapper in wrappers(tree.language):
        wrapped, wrapped_rank = _parse_with(tree.code, source, tree.language, wrapper)
        if wrapped is None or wrapped_rank != _CLEAN:
            continue
        label = wrapper.prefix.strip().replace("\n", " ")
        if not np.array_equal(wrapped.type_ids, bare.type_ids):
            notes.append(f"{tree.language}: {label!r} gives other node types")
            continue
        for name in ("parent", "depth", "start_byte", "end_byte", "subtree_end"):
            if not np.array_equal(getattr(wrapped, name), getattr(bare, name)):
                out.append(f"clean wrapped parse ({label!r}) differs from the clean bare one in {name}")
                break
    return out, notes


def run(n: int, seed: int, time_bound: float):
    """Returns (Counter of outcomes, Counter of context notes, list of (case, violation))."""
    rng = random.Random(seed + 1)
    outcomes: Counter = Counter()
    notes: Counter = Counter()
    violations = []
    for case in cases(n, seed):
        outcome, problems, case_notes = check(case, rng, time_bound)
        outcomes[outcome] += 1
        notes.update(case_notes)
        violations += [(case, p) for p in problems]
    return outcomes, notes, violations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--time-bound", type=float, default=5.0, help="seconds per input")
    args = parser.parse_args()
    t0 = time.perf_counter()
    outcomes, notes, violations = run(args.cases, args.seed, args.time_bound)
    took = time.perf_counter() - t0
    print(f"{args.cases} inputs, seed {args.seed}, {len(known_languages())} languages, {took:.0f} s")
    for outcome, count in sorted(outcomes.items()):
        print(f"  {outcome:<40} {count:>7}")
    print("clean bare and clean wrapped parses with other node types (grammar context, not compared):")
    for note, count in sorted(notes.items()):
        print(f"  {note:<60} {count:>7}")
    for case, problem in violations:
        print(f"VIOLATION case {case.index} ({case.mutation}, {case.language}): {problem}; input {case.data[:80]!r}")
    print(f"violations: {len(violations)}")
    raise SystemExit(1 if violations else 0)


if __name__ == "__main__":
    main()
