"""A trained probe on one split: its predicted (d, c, u) (`predict`), and the trees recovered
from them, scored against the gold ones (`evaluate`).

Losses are means over the whole split (sums over all batches divided by all counts), not means
of batch means (`mean_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from codeprobe.probes.astprobe.probe import BatchLayout, LossParts, ProbeModule, loss_parts
from codeprobe.probes.astprobe.probe_data import ProbeData, gather
from codeprobe.probes.astprobe.targets import Targets, eval_batches
from codeprobe.probes.astprobe.tree_scores import SnippetScores, score
from codeprobe.probes.astprobe.tuple_batch import TupleBatch
from codeprobe.probes.astprobe.vocab import UNKNOWN_ID, LabelVocab


@dataclass(frozen=True)
class ProbeScores:
    """Evaluation of a probe on one split.

    Attributes:
        precision, recall, f1: macro averages over snippets of the recovered trees' scores.
        acc_c, acc_u: accuracy of the argmax c and u labels (a gold label unseen in training is
            always wrong).
        d_pairs: fraction of the pairs with gold d_i > d_j predicted with dhat_i > dhat_j.
        loss: L_d + L_c + L_u (no penalty).
        per_snippet: P, R, F1 of every snippet.
    """

    precision: float
    recall: float
    f1: float
    acc_c: float
    acc_u: float
    d_pairs: float
    loss: float
    per_snippet: SnippetScores

    def as_dict(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("precision", "recall", "f1", "acc_c", "acc_u", "d_pairs", "loss")}


@dataclass(frozen=True)
class Prediction:
    """Predicted tuples of a split: `tuples.d` are the squared distances dhat."""

    tuples: TupleBatch
    loss: float
    acc_c: float
    acc_u: float
    d_pairs: float


def predict(
    module: ProbeModule,
    data: ProbeData,
    vocabs: tuple[LabelVocab, LabelVocab],
    device: str = "cpu",
) -> Prediction:
    """Predicted (d, c, u) of every snippet (argmax labels), with loss and accuracies."""
    c_vocab, u_vocab = vocabs
    enc = Targets.of(data, c_vocab, u_vocab)
    dhat, c_pred, u_pred = [], [], []
    parts: list[LossParts] = []
    right_pairs = torch.zeros((), dtype=torch.float64)
    module.eval()
    with torch.no_grad():
        for ids in eval_batches(len(data)):
            tok, lay, d, c, u = enc.reference_batch(ids, device)
            h = torch.empty((tok.size, data.hidden), dtype=torch.float32, device=device)
            out = module(gather(data.hidden_states, tok, h), lay.split_index, data.language)
            parts.append(loss_parts(*out, d, c, u, lay))
            right_pairs += _ordered_right(out[0], d, lay)
            dhat.append(out[0].double().cpu().numpy())
            c_pred.append(out[1].argmax(dim=1).cpu().numpy())
            u_pred.append(out[2].argmax(dim=1).cpu().numpy())
    gold_pairs = sum(float(p.d_count) for p in parts)
    c_hat = np.concatenate(c_pred)
    u_hat = np.concatenate(u_pred)
    tuples = TupleBatch(
        lengths=data.gold.lengths,
        d=np.concatenate(dhat),
        c=c_hat,
        u=u_hat,
        c_names=c_vocab.labels,
        u_names=u_vocab.labels,
    )
    return Prediction(
        tuples=tuples,
        loss=mean_loss(parts),
        acc_c=_accuracy(c_hat, enc.c),
        acc_u=_accuracy(u_hat, enc.u),
        d_pairs=float(right_pairs) / gold_pairs if gold_pairs else 0.0,
    )


def evaluate(
    module: ProbeModule,
    data: ProbeData,
    vocabs: tuple[LabelVocab, LabelVocab],
    device: str = "cpu",
) -> ProbeScores:
    """Recover every snippet's tree from the probe's predictions and score it (see
    `tree_scores.score`)."""
    pred = predict(module, data, vocabs, device)
    per = score(pred.tuples, data.gold)
    means = per.mean()
    return ProbeScores(
        precision=means["precision"],
        recall=means["recall"],
        f1=means["f1"],
        acc_c=pred.acc_c,
        acc_u=pred.acc_u,
        d_pairs=pred.d_pairs,
        loss=pred.loss,
        per_snippet=per,
    )


def mean_loss(parts: list[LossParts]) -> float:
    """L_d + L_c + L_u over all of `parts` (each term: all sums over all counts)."""
    fields = ("d_sum", "d_count", "c_sum", "c_count", "u_sum", "u_count")
    summed = LossParts(*(sum(getattr(p, f).double().cpu() for p in parts) for f in fields))
    return float(summed.total())


def _accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    if gold.size == 0:
        return 0.0
    return float(((pred == gold) & (gold != UNKNOWN_ID)).mean())


def _ordered_right(dhat: torch.Tensor, d_gold: torch.Tensor, lay: BatchLayout) -> torch.Tensor:
    """Number of gold-ordered pairs (d_i > d_j, same snippet) with dhat_i > dhat_j."""
    ordered = d_gold[lay.pair_a] > d_gold[lay.pair_b]
    right = dhat[lay.pair_a] > dhat[lay.pair_b]
    return (ordered & right).sum().double().cpu()
