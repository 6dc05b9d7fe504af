"""Effect of CAT-probing's `mask` (docs/cat.md): the full-matrix CAT-score against the causal
convention for decoders (arXiv:2210.04633 defines the score on encoders' full matrices).

Not a speed benchmark: it prints two tables.

1. Worked examples on real Python functions (CoSQA, as in tests/), attention made by hand, over
   all code tokens and U-AST distances: attention ranked exactly by tree distance without a
   mask (an encoder) and with a causal mask (a decoder), uniform causal attention (an untrained
   decoder: A[i, j] = 1 / (i + 1) for j <= i), and both baselines; the 112-token function issue
   25 measured, and the mean over every function of 8+ tokens among the first `--n`.
2. Tiny random-weight decoders (2 layers, 4 heads, 32 wide: Llama-style with a BOS token,
   GPT-2-style with no special token; tests/cat/cat_models.py) with two weight scales: 0.02
   (the usual init, near-uniform attention, like an untrained model) and 0.3 (peaked). Per
   layer, the CAT-score and both baselines under each mask, `types="paper"`, on the same
   functions, from one forward pass (the inputs are scored twice).

Usage: python benchmarks/cat_mask.py [--n 200]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from cat.cat_models import BUILDERS  # noqa: E402
from shared_data import cosqa_functions  # noqa: E402

from codeprobe.model import load_model  # noqa: E402
from codeprobe.probes.cat import CATProbe, SkippedSample, cat_scores, positional_attention, random_attention  # noqa: E402
from codeprobe.probes.cat.dataset import score_samples  # noqa: E402
from codeprobe.syntax import parse, uast_distance  # noqa: E402

MASKS = ("full", "causal")
ATTENTIONS = ("ranked by distance, no mask", "ranked by distance, causal", "uniform causal", "random", "positional")


def hand_made(ident: str, d: np.ndarray) -> dict[str, dict[str, float]]:
    """{attention: {mask: CAT-score}} of the hand-made matrices on distances `d` (n, n)."""
    n = len(d)
    ranked = 2.0 ** -d.astype(np.float64)  # strictly decreasing in distance
    tri = np.tri(n)
    out = {}
    for mask in MASKS:
        matrices = (ranked, ranked * tri, tri / tri.sum(axis=1, keepdims=True))
        matrices += (random_attention(n, 0, ident, mask), positional_attention(np.arange(n), mask))
        for name, a in zip(ATTENTIONS, matrices):
            out.setdefault(name, {})[mask] = float(cat_scores(a, d, mask=mask))
    return out


def worked_examples(n: int) -> None:
    rows, at_112 = [], None
    for ident, code in cosqa_functions()[:n]:
        d = uast_distance(parse(code, "python").tokens())
        if len(d) < 8:
            continue
        scores = hand_made(ident, d)
        rows.append(scores)
        if len(d) == 112 and at_112 is None:
            at_112 = scores
    if at_112 is None:  # the 112-token function lies beyond the first n: find it
        ident, code = next((i, c) for i, c in cosqa_functions() if len(parse(c, "python").tokens()) == 112)
        at_112 = hand_made(ident, uast_distance(parse(code, "python").tokens()))
    print(f"## Hand-made attention: one 112-token function; mean over {len(rows)} functions of 8+ tokens\n")
    print("| attention | full, 112 tokens | causal, 112 tokens | full, mean | causal, mean |")
    print("|---|---|---|---|---|")
    for name in ATTENTIONS:
        means = [np.nanmean([r[name][m] for r in rows]) for m in MASKS]
        cells = [at_112[name][m] for m in MASKS] + means
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    print()


def tiny_decoders(n: int) -> None:
    snippets = [(str(k), code) for k, (_, code) in enumerate(cosqa_functions()[:n])]
    print(f"## Tiny random-weight decoders, {n} functions, types paper, head mean\n")
    print("| model | init | layer | full: CAT | random | positional | causal: CAT | random | positional |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in ("llama", "gpt2"):
        for init in (0.02, 0.3):
            loaded = load_model(str(BUILDERS[name](initializer_range=init)), device="cpu")
            probe = CATProbe(types="paper")
            inputs = list(probe.inputs(snippets, loaded, "python"))
            samples = [x if isinstance(x, SkippedSample) else x.sample for x in inputs]
            by_mask = {m: score_samples(samples, language="python", types="paper", mask=m).summary for m in MASKS}
            for layer in range(loaded.info.n_layers):
                cells = []
                for m in MASKS:
                    s = by_mask[m]
                    r = int(np.flatnonzero((s.layer == layer) & (s.head == -1))[0])
                    cells += [s.score[r], s.random_baseline[r], s.positional_baseline[r]]
                print(f"| {name} | {init} | {layer} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="CoSQA functions (the first n)")
    args = parser.parse_args()
    worked_examples(args.n)
    tiny_decoders(args.n)


if __name__ == "__main__":
    main()
