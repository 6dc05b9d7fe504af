"""Plausibility check: codeprobe's offset baselines on real code beside CodeSyntax's published ones.

CodeSyntax (Shen et al., EMNLP 2022 Findings, arXiv:2210.14473) reports, per relation, the top-k
accuracy of a positional-offset baseline and an offset + keyword baseline. This script computes
codeprobe's versions of both (`codeprobe.probes.heads`: `rule_hits`, the greedy rule sets,
`evaluate`) on a seeded sample of real functions, chosen on a validation half and reported on a
test half, and prints them beside CodeSyntax's numbers.

Only the order of magnitude can agree: CodeSyntax's data (CodeSearchNet functions, deduplicated
against CuBERT's and CodeBERT's pre-training), tokenizers (Python's `tokenize`, `javalang`) and
relations (Python's `ast`, Eclipse JDT) all differ from codeprobe's (here: the running
interpreter's standard library and CodeSearchNet Java test methods, tree-sitter tokens,
relations read off tree-sitter's field names). Where a codeprobe relation has a CodeSyntax
counterpart the two are listed side by side; the `def` column says whether both definitions
pick the same head token and the same first dependent token on plain code ("same"; they may
still part on nesting, e.g. a chain of `elif`s or of one binary operator) or not ("differs": e.g.
tree-sitter's Java `condition` is the parenthesized expression, so it starts at `(`, one token
before JDT's expression).

Score: head->dep, first token (the head token's prediction must be the dependent's first token),
the metric of CodeSyntax's main tables ("first"). Top-k of a rule baseline: k rules chosen
greedily on validation (`codeprobe.probes.heads.baselines`); offset + keyword: per relation and k
the better on validation of the greedy offset set and the greedy keyword set, CodeSyntax's "max of
the two". CodeSyntax differs in two choices: it chooses its rules on the split it reports on
(test), and its offsets are +1..+512 (right only), codeprobe's +-1..+-max_offset (default 10);
the averages are printed for both +-max_offset and +-512.

No model runs. `HeadsAccumulator` wants attention, so every snippet gets uniform attention of
one layer and one head; only the rule baselines (which read edges and token texts alone) are
read from the result, never its "best head".

Keywords: codeprobe has no per-language keyword list, so they are given here as CodeSyntax gave
its own: Python's reserved words (`keyword.kwlist` of the running interpreter: the 35 words
CodeSyntax lists), Java's reserved keywords (JLS 17 section 3.9, without `_`) with the literals
`true`, `false`, `null` and `;`: CodeSyntax's Java list for its main numbers plus `enum`.

CodeSyntax's numbers: the stored outputs of `evaluating_models/PL/analysis.ipynb` in
github.com/dashends/CodeSyntax: averages over relations (30 Python, 38 Java) of the test split
under the first-token metric at k = 1, 3, 10 (cells 6 and 10; at k = 1 offset + keyword 49.9 /
60.4, CuBERT 39.1 / 39.7, CodeBERT 33.0 / 36.3 for Python / Java, the averages cited from the
paper) and the per-relation top-1 offset baseline (cells 7 and 11, "baseline" column; their means
are the published offset averages, 43.3 and 52.7). The notebook has no per-relation offset +
keyword or top-3 / top-10 numbers.

Usage: python benchmarks/sanity_codesyntax_offsets.py [--snippets N] [--seed S] [--min-edges M]
       [--max-offset O] [--matched-only]
"""

from __future__ import annotations

import argparse
import keyword
import time
from pathlib import Path

import numpy as np

from codeprobe.datasets import load_splits
from codeprobe.probes.heads import EdgeArrays, HeadsAccumulator, HeadsSample, evaluate
from codeprobe.syntax import frequent_relations, parse, relation_edges

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
KS = (1, 3, 10)
CODESYNTAX_MAX_OFFSET = 512  # their offsets: +1..+512

PYTHON_KEYWORDS = tuple(keyword.kwlist)
JAVA_KEYWORDS = (
    *"abstract assert boolean break byte case catch char class const continue default do double else".split(),
    *"enum extends final finally float for goto if implements import instanceof int interface long".split(),
    *"native new package private protected public return short static strictfp super switch".split(),
    *"synchronized this throw throws transient try void volatile while".split(),
    *"true false null ;".split(),
)

# CodeSyntax's published averages over relations (test split, first-token metric), in percent at
# k = 1, 3, 10: analysis.ipynb cells 6 (Python, 30 relations) and 10 (Java, 38 relations).
PUBLISHED_AVERAGES = {
    "python": {
        "offset": (43.3, 62.4, 86.0),
        "offset+keyword": (49.9, 69.3, 89.2),
        "CuBERT": (39.1, 57.5, 80.0),
        "CodeBERT": (33.0, 50.5, 77.1),
    },
    "java": {
        "offset": (52.7, 71.5, 87.1),
        "offset+keyword": (60.4, 77.2, 90.0),
        "CuBERT": (39.7, 59.8, 80.0),
        "CodeBERT": (36.3, 57.1, 78.3),
    },
}
PUBLISHED_N_RELATIONS = {"python": 30, "java": 38}

# CodeSyntax's per-relation top-1 offset baseline (test, first token), as fractions:
# analysis.ipynb cell 7 (Python) and cell 11 (Java), "baseline" column.
PUBLISHED_OFFSET_TOP1 = {
    "python": {
        "If:body->orelse": 0.071,
        "If:if->body": 0.231,
        "If:if->else": 0.057,
        "If:if->test": 0.988,
        "If:test->body": 0.232,
        "If:test->orelse": 0.051,
        "For:for->body": 0.327,
        "For:for->iter": 0.774,
        "For:for->target": 0.994,
        "For:iter->body": 0.348,
        "For:target->body": 0.327,
        "For:target->iter": 0.774,
        "While:test->body": 0.485,
        "While:while->body": 0.485,
        "While:while->test": 0.993,
        "Try:body->finalbody": 0.103,
        "Try:body->handler": 0.079,
        "Try:body->orelse": 0.105,
        "Try:handler->finalbody": 0.25,
        "Try:handler->orelse": 0.158,
        "Call:args->keywords": 0.549,
        "Call:func->args": 0.932,
        "Call:func->keywords": 0.341,
        "IfExp:body->orelse": 0.136,
        "IfExp:body->test": 0.421,
        "IfExp:test->orelse": 0.267,
        "Attribute:value->attr": 0.823,
        "Subscript:value->slice": 0.664,
        "Assign:target->value": 0.712,
        "children:parent->child": 0.307,
    },
    "java": {
        "If:body->orelse": 0.094,
        "If:if->body": 0.262,
        "If:if->else": 0.07,
        "If:if->test": 0.965,
        "If:test->body": 0.262,
        "If:test->orelse": 0.068,
        "For:for->body": 0.36,
        "For:for->initializers": 1.0,
        "For:for->test": 0.848,
        "For:for->updaters": 0.455,
        "For:initializers->body": 0.375,
        "For:initializers->test": 0.854,
        "For:initializers->updaters": 0.457,
        "For:test->body": 0.492,
        "For:test->updaters": 0.534,
        "For:updaters->body": 0.889,
        "While:test->body": 0.427,
        "While:while->body": 0.427,
        "While:while->test": 0.82,
        "Try:body->finalbody": 0.043,
        "Try:body->handler": 0.055,
        "Try:handler->finalbody": 0.299,
        "Do:body->test": 0.067,
        "Do:do->body": 1.0,
        "Do:do->test": 0.067,
        "Switch:expr->statement": 0.752,
        "Switch:switch->expr": 1.0,
        "Switch:switch->statement": 0.752,
        "InfixExpr:left->right": 0.616,
        "Call:func->args": 0.987,
        "IfExp:body->orelse": 0.525,
        "IfExp:test->body": 0.375,
        "IfExp:test->orelse": 0.245,
        "Attribute:value->attr": 0.839,
        "InstanceofExpr:expr->type": 0.919,
        "Subscript:value->slice": 0.788,
        "Assign:target->value": 0.687,
        "children:parent->child": 0.368,
    },
}

# codeprobe relation -> (CodeSyntax relation, whether head and dependent's first token agree).
SAME, DIFFERS = "same", "differs"
COUNTERPARTS = {
    "python": {
        "if_statement:if->condition": ("If:if->test", SAME),
        "if_statement:if->consequence": ("If:if->body", SAME),
        "if_statement:condition->consequence": ("If:test->body", SAME),
        # both: the `else` / `elif` token (an `elif` chain: ts from the first `if` to every clause,
        # CodeSyntax from each clause to the next)
        "if_statement:if->alternative": ("If:if->else", SAME),
        "if_statement:condition->alternative": ("If:test->orelse", DIFFERS),  # ts: `else`; ast: the statement after it
        "if_statement:consequence->alternative": ("If:body->orelse", DIFFERS),
        "for_statement:for->left": ("For:for->target", SAME),
        "for_statement:for->right": ("For:for->iter", SAME),
        "for_statement:for->body": ("For:for->body", SAME),
        "for_statement:left->right": ("For:target->iter", SAME),
        "for_statement:left->body": ("For:target->body", SAME),
        "for_statement:right->body": ("For:iter->body", SAME),
        "while_statement:while->condition": ("While:while->test", SAME),
        "while_statement:while->body": ("While:while->body", SAME),
        "while_statement:condition->body": ("While:test->body", SAME),
        # ts: the function's first token -> `(`; CodeSyntax: its last token -> the first argument
        "call:function->arguments": ("Call:func->args", DIFFERS),
        "attribute:object->attribute": ("Attribute:value->attr", SAME),
        "subscript:value->subscript": ("Subscript:value->slice", SAME),
        "assignment:left->right": ("Assign:target->value", SAME),
    },
    "java": {
        "if_statement:if->condition": ("If:if->test", DIFFERS),  # ts: `(`; JDT: the expression
        "if_statement:if->consequence": ("If:if->body", SAME),
        "if_statement:condition->consequence": ("If:test->body", DIFFERS),  # head `(` in ts
        "if_statement:condition->alternative": ("If:test->orelse", DIFFERS),
        "if_statement:consequence->alternative": ("If:body->orelse", SAME),
        "for_statement:for->init": ("For:for->initializers", SAME),
        "for_statement:for->condition": ("For:for->test", SAME),
        "for_statement:for->update": ("For:for->updaters", SAME),
        "for_statement:for->body": ("For:for->body", SAME),
        "for_statement:init->condition": ("For:initializers->test", SAME),
        "for_statement:init->update": ("For:initializers->updaters", SAME),
        "for_statement:init->body": ("For:initializers->body", SAME),
        "for_statement:condition->update": ("For:test->updaters", SAME),
        "for_statement:condition->body": ("For:test->body", SAME),
        "for_statement:update->body": ("For:updaters->body", SAME),
        "while_statement:while->condition": ("While:while->test", DIFFERS),
        "while_statement:while->body": ("While:while->body", SAME),
        "while_statement:condition->body": ("While:test->body", DIFFERS),
        "do_statement:do->body": ("Do:do->body", SAME),
        "do_statement:do->condition": ("Do:do->test", DIFFERS),
        "do_statement:body->condition": ("Do:body->test", DIFFERS),
        "switch_expression:switch->condition": ("Switch:switch->expr", DIFFERS),
        "switch_expression:switch->body": ("Switch:switch->statement", DIFFERS),  # ts: `{`
        "switch_expression:condition->body": ("Switch:expr->statement", DIFFERS),
        "ternary_expression:condition->consequence": ("IfExp:test->body", SAME),
        "ternary_expression:condition->alternative": ("IfExp:test->orelse", SAME),
        "ternary_expression:consequence->alternative": ("IfExp:body->orelse", SAME),
        "binary_expression:left->right": ("InfixExpr:left->right", SAME),
        # ts: every call, name -> `(`; JDT: calls with arguments, name -> the first argument
        "method_invocation:name->arguments": ("Call:func->args", DIFFERS),
        "method_invocation:object->name": ("Attribute:value->attr", SAME),
        "field_access:object->field": ("Attribute:value->attr", SAME),
        "instanceof_expression:left->right": ("InstanceofExpr:expr->type", SAME),
        "array_access:array->index": ("Subscript:value->slice", SAME),
        "assignment_expression:left->right": ("Assign:target->value", SAME),
    },
}

LANGUAGES = {
    "python": ("stdlib", PYTHON_KEYWORDS, "the running interpreter's standard library (functions and methods)"),
    "java": (str(SHARED / "csn-java-test-tokens.txt"), JAVA_KEYWORDS, "CodeSearchNet Java test methods"),
}


def snippet_edges(snippets, language: str):
    """(id, token texts, RelationEdges) per snippet; strings are one token each, as in
    CodeSyntax's tokenizers."""
    out = []
    for s in snippets:
        tokens = parse(s.code, language).tokens(collapse_strings=True)
        out.append((s.id, tokens.texts, relation_edges(tokens)))
    return out


def accumulator(rows, vocabulary, *, keywords, max_offset: int) -> HeadsAccumulator:
    """The rule baselines of `rows`, in a heads accumulator fed uniform attention (never read)."""
    acc = HeadsAccumulator(ks=KS, max_offset=max_offset, keywords=keywords, random_baseline=False)
    for sample_id, texts, edges in rows:
        n = len(texts)
        uniform = np.broadcast_to(np.float32(1.0 / n), (1, 1, n, n))
        acc.add(HeadsSample(sample_id, uniform, EdgeArrays.like(edges.select(vocabulary)), texts))
    return acc


def pct(x: float) -> str:
    return f"{100 * x:5.1f}" if np.isfinite(x) else "    -"


def baseline_rows(result, min_edges: int) -> dict[str, dict[int, object]]:
    """relation name -> k -> its `RelationScore` (head->dep, first token), for the relations with
    at least `min_edges` scorable test edges (evaluate already asked as many on validation)."""
    rows: dict[str, dict[int, object]] = {}
    for k in KS:
        for r in result.table("head->dep", "first", k):
            if r.test_edges >= min_edges:
                rows.setdefault(r.name, {})[k] = r
    return {name: by_k for name, by_k in rows.items() if len(by_k) == len(KS)}


def means(rows, baseline: str) -> str:
    """The mean over `rows` of a baseline's test accuracy at each k of `KS`."""
    return " ".join(pct(float(np.mean([by_k[k].baselines[baseline].mean for by_k in rows]))) for k in KS)


def run(language: str, args) -> None:
    dataset, keywords, what = LANGUAGES[language]
    parts, report = load_splits(dataset, language, n_snippets=args.snippets, fractions=(0.0, 0.5, 0.5), seed=args.seed)
    valid, test = snippet_edges(parts.valid, language), snippet_edges(parts.test, language)
    vocabulary = frequent_relations([e for _, _, e in valid], min_count=args.min_edges)
    tables = {}
    for max_offset in dict.fromkeys((args.max_offset, CODESYNTAX_MAX_OFFSET)):
        v_acc = accumulator(valid, vocabulary, keywords=keywords, max_offset=max_offset)
        t_acc = accumulator(test, vocabulary, keywords=keywords, max_offset=max_offset)
        # Bootstrap intervals are not printed, so one resample (the default 1,000 cost most of the time).
        result = evaluate(v_acc, t_acc, relation_names=vocabulary, min_edges=args.min_edges, n_resamples=1)
        tables[max_offset] = baseline_rows(result, args.min_edges)
    rows = tables[args.max_offset]
    n_tokens = [len(t) for _, t, _ in valid + test]
    print(f"\n## {language}: {what}")
    print(
        f"snippets: {len(valid)} validation + {len(test)} test (seed {args.seed}; of {report.read} read); "
        f"tokens per snippet: median {int(np.median(n_tokens))}, max {max(n_tokens)}; keywords: {len(keywords)}"
    )
    print(
        f"relations with >= {args.min_edges} edges in validation and in test: {len(rows)} "
        f"(of {len(vocabulary)} with >= {args.min_edges} in validation)"
    )

    published = PUBLISHED_OFFSET_TOP1[language]
    counterparts = COUNTERPARTS[language]
    width = max([len(name) for name in rows] + [40])
    print(
        f"\ntest accuracy (%), offsets +-1..+-{args.max_offset}; rules@1: the offset, and the offset+keyword rule if other"
    )
    print(
        f"{'codeprobe relation':<{width}}  edges v/t   offset @1 @3 @10     off+kw @1 @3 @10  rules@1"
        "         | CodeSyntax relation         def      offset@1"
    )
    for name, by_k in sorted(rows.items(), key=lambda kv: (-kv[1][1].test_edges, kv[0])):
        other, how = counterparts.get(name, (None, None))
        if args.matched_only and other is None:
            continue
        off = " ".join(pct(by_k[k].baselines["offset"].mean) for k in KS)
        kw = " ".join(pct(by_k[k].baselines["offset+keyword"].mean) for k in KS)
        rules = by_k[1].rules
        rule = rules["offset"][0] if rules["offset"] else "-"
        if rules["offset+keyword"] != rules["offset"]:
            rule += " " + rules["offset+keyword"][0]
        line = f"{name:<{width}}  {by_k[1].validation_edges:5d}/{by_k[1].test_edges:<5d}  {off}    {kw}  {rule:<15}"
        if other is not None:
            line += f" | {other:<27} {how:<8} {pct(published[other])}"
        print(line.rstrip())

    print("\naverages over relations, test accuracy (%) at k = 1 / 3 / 10:      offset              offset+keyword")
    matched = [name for name in rows if name in counterparts]
    same = [name for name in matched if counterparts[name][1] == SAME]
    for max_offset, table in tables.items():
        print(f"  codeprobe, offsets +-1..+-{max_offset}:")
        for label, names in (
            (f"all {len(table)} frequent relations", list(table)),
            (f"the {len(matched)} with a CodeSyntax counterpart", matched),
            (f"the {len(same)} of those defined the same way", same),
        ):
            if names:
                chosen = [table[name] for name in names]
                print(f"    {label:<58} {means(chosen, 'offset')}   {means(chosen, 'offset+keyword')}")
    if matched:
        print("  CodeSyntax, its per-relation offset numbers (k = 1 only):")
        for label, names in (("those counterparts", matched), ("those defined the same way", same)):
            theirs = sorted({counterparts[name][0] for name in names})
            if theirs:
                value = pct(float(np.mean([published[o] for o in theirs])))
                print(f"    {f'{label}: {len(theirs)} CodeSyntax relations':<58} {value}")
    print(f"  CodeSyntax, published averages over its {PUBLISHED_N_RELATIONS[language]} relations (offsets +1..+512):")
    published_means = PUBLISHED_AVERAGES[language]

    def row(values) -> str:
        return " ".join(f"{v:5.1f}" for v in values)

    print(f"    {'the two baselines':<58} {row(published_means['offset'])}   {row(published_means['offset+keyword'])}")
    for model in ("CuBERT", "CodeBERT"):
        print(f"    {f'(for context: {model} best head per relation)':<58} {row(published_means[model])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snippets", type=int, default=600, help="snippets per language, split in halves")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-edges", type=int, default=20, help="edges a relation needs in each half")
    parser.add_argument("--max-offset", type=int, default=10, help="offsets +-1..+-O (codeprobe's default 10)")
    parser.add_argument("--matched-only", action="store_true", help="list only relations with a CodeSyntax counterpart")
    args = parser.parse_args()
    print("Plausibility check, not a replication: CodeSyntax's data, tokenizers and relation definitions")
    print("differ from codeprobe's, so only the order of magnitude of the two sides is comparable.")
    print("Score: head->dep, the dependent's first token. codeprobe: rules chosen on validation, reported")
    print("on test. CodeSyntax (github.com/dashends/CodeSyntax, evaluating_models/PL/analysis.ipynb, stored")
    print("outputs): test split, rules chosen on it, offsets +1..+512; per relation only the offset baseline")
    print("at k = 1 is published. No model runs here: uniform attention fills the accumulator, and only its")
    print("rule baselines are read.")
    t0 = time.perf_counter()
    for language in LANGUAGES:
        run(language, args)
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
