"""AST-Probe benchmark, both sides in one process on the same real inputs:

1. epoch: one training epoch on cached token vectors against one that re-encodes every batch
   with the model (the reference method: the frozen model runs inside the training loop);
2. recovery: tree recovery + P/R/F1 of every snippet, the flat-array path against the
   reference's networkx graphs (codeprobe.reference.astprobe), checked to agree;
3. stack: a probe on every hidden state of the model, trained layer by layer (`fit` per layer)
   against all layers together (`fit_many`), the same fixed number of epochs on both sides
   (early stopping cannot fire), checked to give the same probes. Each side runs `--repeat`
   times, alternating, and the fastest run of each counts (the machine is shared).

Inputs: functions of the running interpreter's standard library (the last tenth held out as
the validation split), the packaged default model.
Usage: python benchmarks/bench_astprobe.py [--n 256] [--layer 3] [--rank 128] [--threads 1]
       [--epochs 3] [--repeat 2] [--only stack]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from codeprobe.datasets import SkipCounter, load_dataset, parses_cleanly, sample
from codeprobe.model import Extractor, Snippet, load_model
from codeprobe.probes.astprobe import LabelVocab, TrainConfig, fit, predict, prepare_split, score
from codeprobe.probes.astprobe.probe import ProbeModule
from codeprobe.probes.astprobe.training import _epoch_batches, _Targets, fit_many, train_epoch, train_step
from codeprobe.reference.astprobe import oracle_score

PARTS = ("epoch", "recovery", "stack")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256, help="functions (nine tenths train, one tenth validation)")
    ap.add_argument("--layer", type=int, default=3, help="hidden state of the epoch and recovery parts")
    ap.add_argument("--rank", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads, both sides")
    ap.add_argument("--epochs", type=int, default=3, help="epochs of each probe in the stack part")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each side in the stack part")
    ap.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    counter = SkipCounter()
    snippets = sample(parses_cleanly(load_dataset("stdlib", "python", counter=counter), counter),
                      args.n, seed=args.seed, counter=counter)
    n_valid = max(1, len(snippets) // 10)
    loaded = load_model(None, device="cpu")
    extractor = Extractor(loaded, batch_size=16, attention=False, vectors=True, length_policy="skip")
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as cache_root:
        start = time.perf_counter()
        split = prepare_split(snippets[n_valid:], "python", extractor, cache_root)
        valid = prepare_split(snippets[:n_valid], "python", extractor, cache_root)
        build = time.perf_counter() - start
        vocabs = (LabelVocab.build(t.c for t in split.tuples), LabelVocab.build(t.u for t in split.tuples))
        print(f"{len(split)} + {len(valid)} stdlib functions ({split.cache.n_tokens} + {valid.cache.n_tokens} "
              f"tokens), {loaded.info.name}, rank {args.rank}, {args.threads} torch thread(s); "
              f"cache built once in {build:.1f} s")
        module = None
        if "epoch" in args.only or "recovery" in args.only:
            module, epoch_lines = _epoch(args, split, vocabs, extractor)
            lines += epoch_lines if "epoch" in args.only else []
        if "recovery" in args.only:
            lines += _recovery(args, split, vocabs, module)
        if "stack" in args.only:
            lines += _stack(args, split, valid, vocabs)
    print("\n".join(lines))


def _epoch(args, split, vocabs, extractor) -> tuple[ProbeModule, list[str]]:
    data = split.data(args.layer)
    config = TrainConfig()

    def new_probe():
        module = ProbeModule(split.cache.hidden, args.rank, {"python": (len(vocabs[0]), len(vocabs[1]))},
                             torch.Generator().manual_seed(args.seed))
        return module, torch.optim.Adam(module.parameters(), lr=config.lr)

    targets = _Targets.of(data, *vocabs)
    # The batches `train_epoch` draws from the same seed.
    batches = [ids for _, ids in _epoch_batches([len(data)], config.batch_size, np.random.default_rng(args.seed))]

    # Cached: the library's epoch, gathering each batch's rows from the float16 memory map.
    module, opt = new_probe()
    start = time.perf_counter()
    train_epoch(module, opt, data, {"python": vocabs}, config=config, rng=np.random.default_rng(args.seed))
    cached = time.perf_counter() - start

    # Reference: run the frozen model on each batch, pool subwords, then the same step.
    ref_module, ref_opt = new_probe()
    start = time.perf_counter()
    for k, ids in enumerate(batches):
        items = [Snippet(split.ids[i], split.codes[i], split.tuples[i].tokens.start_char,
                         split.tuples[i].tokens.end_char) for i in ids]
        h = torch.from_numpy(np.concatenate([r.vectors[args.layer] for r in extractor.extract(items)]))
        batch = targets.batch(ids, "cpu")
        if k == 0:  # same inputs on both sides, up to the cache's float16
            cached_h = torch.from_numpy(np.asarray(data.vectors[batch.tok])).float()
            torch.testing.assert_close(h, cached_h, atol=2e-2, rtol=2e-3)
        train_step(ref_module, ref_opt, h, batch.targets, "python")
    reencoded = time.perf_counter() - start
    return module, [
        f"training epoch, layer {args.layer}, re-encoding every batch (reference): {reencoded:8.3f} s",
        f"training epoch, layer {args.layer}, cached vectors:                       {cached:8.3f} s",
        f"epoch speed-up (re-encoding / cached): {reencoded / cached:.1f}x",
    ]


def _recovery(args, split, vocabs, module: ProbeModule) -> list[str]:
    """Recovery + scoring of the epoch's predictions on the training functions."""
    data = split.data(args.layer)
    pred = predict(module, data, vocabs).tuples
    start = time.perf_counter()
    fast = score(pred, data.gold)
    fast_s = time.perf_counter() - start
    tok = np.r_[0, np.cumsum(pred.lengths)]
    pairs = np.r_[0, np.cumsum(pred.lengths - 1)]
    gold = data.gold
    start = time.perf_counter()
    slow = []
    for i in range(len(pred)):
        g = (gold.d[pairs[i]:pairs[i + 1]].tolist(),
             [gold.c_names[k] for k in gold.c[pairs[i]:pairs[i + 1]]],
             [gold.u_names[k] for k in gold.u[tok[i]:tok[i + 1]]])
        p = (pred.d[pairs[i]:pairs[i + 1]].tolist(),
             [pred.c_names[k] for k in pred.c[pairs[i]:pairs[i + 1]]],
             [pred.u_names[k] for k in pred.u[tok[i]:tok[i + 1]]])
        slow.append(oracle_score(g, p))
    nx_s = time.perf_counter() - start
    np.testing.assert_allclose(np.array(slow), np.stack([fast.precision, fast.recall, fast.f1], 1), atol=1e-12)
    return [
        f"recovery + P/R/F1, networkx graphs (reference):       {nx_s:8.3f} s "
        f"({1e3 * nx_s / len(pred):.2f} ms/snippet)",
        f"recovery + P/R/F1, flat arrays:                       {fast_s:8.3f} s "
        f"({1e3 * fast_s / len(pred):.3f} ms/snippet), mean F1 {fast.mean()['f1']:.4f} on both",
        f"recovery speed-up (networkx / flat):   {nx_s / fast_s:.1f}x",
    ]


def _stack(args, split, valid, vocabs) -> list[str]:
    """Every hidden state's probe: layer by layer against all together, same epochs and seed."""
    layers = range(split.cache.n_states)
    train_data = [split.data(layer) for layer in layers]
    valid_data = [valid.data(layer) for layer in layers]
    config = TrainConfig(max_epochs=args.epochs, patience=args.epochs)  # no early stop
    common = {"config": config, "random_state": args.seed}
    one_s, all_s = [], []
    for _ in range(args.repeat):
        start = time.perf_counter()
        alone = [fit(t, v, {"python": vocabs}, args.rank, **common) for t, v in zip(train_data, valid_data)]
        one_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        together = fit_many(train_data, valid_data, {"python": vocabs}, args.rank, **common)
        all_s.append(time.perf_counter() - start)
    # The same probes up to float rounding (which Adam's steps amplify a little, more so on
    # several threads, where the batched and the single products split their sums differently).
    for a, b in zip(alone, together):
        assert len(a.history) == len(b.history) == args.epochs and a.best_epoch == b.best_epoch
        np.testing.assert_allclose([r.valid_loss for r in a.history], [r.valid_loss for r in b.history], rtol=1e-4)
        for key, value in a.module.state_dict().items():
            torch.testing.assert_close(b.module.state_dict()[key], value, atol=1e-3, rtol=1e-2)
    one, together_s = min(one_s), min(all_s)
    return [
        f"{len(layers)} layers x {args.epochs} epochs, rank {args.rank}, layer by layer (fit per layer): "
        f"{one:8.3f} s (runs: {', '.join(f'{s:.2f}' for s in one_s)})",
        f"{len(layers)} layers x {args.epochs} epochs, rank {args.rank}, all layers together (fit_many):  "
        f"{together_s:8.3f} s (runs: {', '.join(f'{s:.2f}' for s in all_s)}); same probes",
        f"stack speed-up (layer by layer / together): {one / together_s:.2f}x",
    ]


if __name__ == "__main__":
    main()
