"""AST-Probe benchmark, both sides in one process on the same real inputs:

1. one training epoch on cached token vectors against one that re-encodes every batch with the
   model (the reference method: the frozen model runs inside the training loop);
2. tree recovery + P/R/F1 of every snippet: the flat-array path against the reference's
   networkx graphs (codeprobe.reference.astprobe), checked to agree.

Inputs: functions of the running interpreter's standard library, the packaged default model.
Usage: python benchmarks/bench_astprobe.py [--n 256] [--layer 3] [--rank 128] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from codeprobe.datasets import SkipCounter, load_dataset, parses_cleanly, sample
from codeprobe.model import Extractor, Snippet, load_model
from codeprobe.probes.astprobe import LabelVocab, TrainConfig, predict, prepare_split, score
from codeprobe.probes.astprobe.probe import ProbeModule
from codeprobe.probes.astprobe.training import _Encoded, _epoch_batches, train_epoch, train_step
from codeprobe.reference.astprobe import oracle_score


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256, help="functions (the epoch's training set)")
    ap.add_argument("--layer", type=int, default=3)
    ap.add_argument("--rank", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads, both sides")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    counter = SkipCounter()
    snippets = sample(parses_cleanly(load_dataset("stdlib", "python", counter=counter), counter),
                      args.n, seed=args.seed, counter=counter)
    loaded = load_model(None, device="cpu")
    extractor = Extractor(loaded, batch_size=16, attention=False, vectors=True, length_policy="skip")
    with tempfile.TemporaryDirectory() as cache_root:
        start = time.perf_counter()
        split = prepare_split(snippets, "python", extractor, cache_root)
        build = time.perf_counter() - start
        data = split.data(args.layer)
        vocabs = (LabelVocab.build(t.c for t in split.tuples), LabelVocab.build(t.u for t in split.tuples))
        enc = _Encoded.of(data, *vocabs)
        config = TrainConfig()
        print(f"{len(split)} stdlib functions ({split.cache.n_tokens} tokens), {loaded.info.name}, "
              f"layer {args.layer}, rank {args.rank}, {args.threads} torch thread(s); "
              f"cache built once in {build:.1f} s")

        def new_probe():
            module = ProbeModule(split.cache.hidden, args.rank, {"python": (len(vocabs[0]), len(vocabs[1]))},
                                 torch.Generator().manual_seed(args.seed))
            return module, torch.optim.Adam(module.parameters(), lr=config.lr)

        # The batches `train_epoch` draws from the same seed.
        batches = [ids for _, ids in _epoch_batches([enc], config.batch_size, np.random.default_rng(args.seed))]

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
            cached_h, lay, d, c, u = enc.batch(ids, "cpu")
            if k == 0:  # same inputs on both sides, up to the cache's float16
                torch.testing.assert_close(h, cached_h, atol=2e-2, rtol=2e-3)
            train_step(ref_module, ref_opt, h, lay, d, c, u, "python")
        reencoded = time.perf_counter() - start

        # Recovery + scoring of the epoch's predictions on the same functions.
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
        np.testing.assert_allclose(np.array(slow), np.stack([fast.precision, fast.recall, fast.f1], 1),
                                   atol=1e-12)

    print(f"training epoch, re-encoding every batch (reference): {reencoded:8.3f} s")
    print(f"training epoch, cached vectors:                       {cached:8.3f} s")
    print(f"recovery + P/R/F1, networkx graphs (reference):       {nx_s:8.3f} s "
          f"({1e3 * nx_s / len(pred):.2f} ms/snippet)")
    print(f"recovery + P/R/F1, flat arrays:                       {fast_s:8.3f} s "
          f"({1e3 * fast_s / len(pred):.3f} ms/snippet), mean F1 {fast.mean()['f1']:.4f} on both")
    print(f"epoch speed-up (re-encoding / cached): {reencoded / cached:.1f}x")
    print(f"recovery speed-up (networkx / flat):   {nx_s / fast_s:.1f}x")


if __name__ == "__main__":
    main()
