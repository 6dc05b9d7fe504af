"""AST-Probe benchmark, both sides in one process on the same real inputs:

1. epoch: one epoch of `fit` on cached token hidden states (the validation loss at initialisation,
   a training pass, the validation loss after it) against the same epoch re-encoding every
   batch with the model (the reference method: the frozen model runs inside the training and
   validation loops), checked to see the same inputs and reach the same losses;
2. recovery: tree recovery + P/R/F1 of every snippet, the flat-array path against the
   reference's networkx graphs (tests/oracles/astprobe.py), checked to agree;
3. stack: a probe on every hidden state of the model, trained one by one (`fit` per hidden
   state) against all hidden states together (`fit_many`), the same fixed number of epochs on both sides
   (early stopping cannot fire), checked to give the same probes. Each side runs `--repeat`
   times, alternating, and the fastest run of each counts (the machine is shared).

Inputs: functions of the running interpreter's standard library (the last tenth held out as
the validation split), the packaged default model.
Usage: python benchmarks/bench_astprobe.py [--n 256] [--hidden-state 3] [--rank 128] [--threads 1]
       [--epochs 3] [--repeat 2] [--only stack]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from codeprobe.datasets import SkipCounter, load_dataset, parses_cleanly, sample
from codeprobe.model import Extractor, ModelInput, load_model
from codeprobe.probes.astprobe import LabelVocab, TrainConfig, fit, fit_many, predict, prepare_split, score
from codeprobe.probes.astprobe.evaluation import mean_loss
from codeprobe.probes.astprobe.probe import LossParts, ProbeModule, orthogonality, stacked_loss
from codeprobe.probes.astprobe.targets import Batch, Targets, epoch_batches, eval_batches

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))  # the test oracles: tests/oracles/
from oracles.astprobe import oracle_score  # noqa: E402

PARTS = ("epoch", "recovery", "stack")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256, help="functions (nine tenths train, one tenth validation)")
    ap.add_argument("--hidden-state", type=int, default=3, help="hidden state of the epoch and recovery parts")
    ap.add_argument("--rank", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads, both sides")
    ap.add_argument("--epochs", type=int, default=3, help="epochs of each probe in the stack part")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each side in the stack part")
    ap.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    counter = SkipCounter()
    snippets = sample(
        parses_cleanly(load_dataset("stdlib", "python", counter=counter), counter),
        args.n,
        seed=args.seed,
        counter=counter,
    )
    n_valid = max(1, len(snippets) // 10)
    loaded = load_model(None, device="cpu")
    extractor = Extractor(loaded, batch_size=16, attention=False, hidden_states=True, length_policy="skip")
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as cache_root:
        start = time.perf_counter()
        split = prepare_split(snippets[n_valid:], "python", extractor, cache_root)
        valid = prepare_split(snippets[:n_valid], "python", extractor, cache_root)
        build = time.perf_counter() - start
        vocabs = (LabelVocab.build(t.c for t in split.tuples), LabelVocab.build(t.u for t in split.tuples))
        print(
            f"{len(split)} + {len(valid)} stdlib functions ({split.cache.n_tokens} + {valid.cache.n_tokens} "
            f"tokens), {loaded.info.name}, rank {args.rank}, {args.threads} torch thread(s); "
            f"cache built once in {build:.1f} s"
        )
        module = None
        if "epoch" in args.only or "recovery" in args.only:
            module, epoch_lines = _epoch(args, split, valid, vocabs, extractor)
            lines += epoch_lines if "epoch" in args.only else []
        if "recovery" in args.only:
            lines += _recovery(args, split, vocabs, module)
        if "stack" in args.only:
            lines += _stack(args, split, valid, vocabs)
    print("\n".join(lines))


def _epoch(args, split, valid, vocabs, extractor) -> tuple[ProbeModule, list[str]]:
    """One epoch of `fit` on the cached hidden states, and the same epoch re-encoding every batch."""
    data, valid_data = split.data(args.hidden_state), valid.data(args.hidden_state)
    config = TrainConfig(max_epochs=1, patience=1)

    # Cached: the library's epoch, gathering each batch's rows from the float16 memory map.
    start = time.perf_counter()
    cached_fit = fit(data, valid_data, {"python": vocabs}, args.rank, config=config, random_state=args.seed)
    cached = time.perf_counter() - start

    # Reference: run the frozen model on each batch, pool subwords, then the same loss and step,
    # with the same initialisation and the batches `fit` draws from the same seed.
    module = ProbeModule(
        split.cache.hidden,
        args.rank,
        {"python": (len(vocabs[0]), len(vocabs[1]))},
        torch.Generator().manual_seed(args.seed),
        config.init,
    )
    opt = torch.optim.Adam(module.parameters(), lr=config.lr)
    targets, valid_targets = Targets.of(data, *vocabs), Targets.of(valid_data, *vocabs)
    start = time.perf_counter()
    _reference_valid_loss(module, valid, valid_targets, extractor, args.hidden_state)
    module.train()
    losses = []
    for k, (_, ids) in enumerate(epoch_batches([len(data)], config.batch_size, np.random.default_rng(args.seed))):
        batch = targets.batch(ids, "cpu")
        h = _encode(split, ids, extractor, args.hidden_state)
        if k == 0:  # same inputs on both sides, up to the cache's float16
            cached_h = torch.from_numpy(np.asarray(data.hidden_states[batch.tok])).float()
            torch.testing.assert_close(h, cached_h, atol=2e-2, rtol=2e-3)
        loss = _reference_loss(module, h, batch) + config.orthogonality * orthogonality(module.proj[None])[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    valid_loss = _reference_valid_loss(module, valid, valid_targets, extractor, args.hidden_state)
    reencoded = time.perf_counter() - start
    # The same epoch, up to the cache's float16 rounding.
    record = cached_fit.history[0]
    np.testing.assert_allclose([np.mean(losses), valid_loss], [record.train_loss, record.valid_loss], rtol=1e-2)
    return cached_fit.module, [
        f"one epoch of fit, hidden state {args.hidden_state}, re-encoding every batch (reference): {reencoded:8.3f} s",
        f"one epoch of fit, hidden state {args.hidden_state}, cached hidden states:                {cached:8.3f} s; "
        f"same losses (validation {record.valid_loss:.4f} against {valid_loss:.4f})",
        f"epoch speed-up (re-encoding / cached): {reencoded / cached:.1f}x",
    ]


def _encode(split, ids, extractor, hidden_state: int) -> torch.Tensor:
    """Token hidden states of snippets `ids` of `split` at `hidden_state`, computed by the model now."""
    items = [ModelInput.from_tokens(split.ids[i], split.codes[i], split.tuples[i].tokens) for i in ids]
    return torch.from_numpy(np.concatenate([r.hidden_states[hidden_state] for r in extractor.extract(items)]))


def _reference_loss(module: ProbeModule, h: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The probe's loss L_d + L_c + L_u (no penalty) on one batch of hidden states h (n, hidden)."""
    lang = batch.language
    parts = stacked_loss(
        h[None], module.proj[None], module.vectors_c[lang][None], module.vectors_u[lang][None], batch.targets
    )
    return parts.total()[0]


def _reference_valid_loss(module: ProbeModule, valid, targets: Targets, extractor, hidden_state: int) -> float:
    """The validation loss (sums over all batches / counts), re-encoding every batch."""
    module.eval()
    parts = []
    with torch.no_grad():
        for ids in eval_batches(len(targets)):
            batch = targets.batch(ids, "cpu")
            lang = batch.language
            p = stacked_loss(
                _encode(valid, ids, extractor, hidden_state)[None],
                module.proj[None],
                module.vectors_c[lang][None],
                module.vectors_u[lang][None],
                batch.targets,
            )
            parts.append(LossParts(p.d_sum[0], p.d_count, p.c_sum[0], p.c_count, p.u_sum[0], p.u_count))
    return mean_loss(parts)


def _recovery(args, split, vocabs, module: ProbeModule) -> list[str]:
    """Recovery + scoring of the epoch's predictions on the training functions."""
    data = split.data(args.hidden_state)
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
        g = (
            gold.d[pairs[i] : pairs[i + 1]].tolist(),
            [gold.c_names[k] for k in gold.c[pairs[i] : pairs[i + 1]]],
            [gold.u_names[k] for k in gold.u[tok[i] : tok[i + 1]]],
        )
        p = (
            pred.d[pairs[i] : pairs[i + 1]].tolist(),
            [pred.c_names[k] for k in pred.c[pairs[i] : pairs[i + 1]]],
            [pred.u_names[k] for k in pred.u[tok[i] : tok[i + 1]]],
        )
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
    """Every hidden state's probe: one by one against all together, same epochs and seed."""
    states = range(split.cache.n_states)
    train_data = [split.data(h) for h in states]
    valid_data = [valid.data(h) for h in states]
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
        f"{len(states)} hidden states x {args.epochs} epochs, rank {args.rank}, one by one (fit each): "
        f"{one:8.3f} s (runs: {', '.join(f'{s:.2f}' for s in one_s)})",
        f"{len(states)} hidden states x {args.epochs} epochs, rank {args.rank}, all together (fit_many): "
        f"{together_s:8.3f} s (runs: {', '.join(f'{s:.2f}' for s in all_s)}); same probes",
        f"stack speed-up (one by one / together): {one / together_s:.2f}x",
    ]


if __name__ == "__main__":
    main()
