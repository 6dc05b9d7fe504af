"""One snippet's recovered tree beside its gold tree (`RecoveredTree`), as `ASTProbe.predict`
gives it: the predicted (d, c, u) and both trees' constituents, with the snippet's scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codeprobe.probes.astprobe.data import ProbeSplit
from codeprobe.probes.astprobe.recovery import constituents
from codeprobe.probes.astprobe.tree_scores import score
from codeprobe.probes.astprobe.tuple_batch import TupleBatch


@dataclass(frozen=True)
class RecoveredTree:
    """One snippet's predicted tree beside its gold tree.

    Attributes:
        id: the snippet's id.
        tokens: the code tokens' texts.
        d: float64 (n - 1,), predicted squared distances; c (n - 1,), u (n,): predicted labels.
        predicted, gold: constituents (label, first token, last token) of the two trees.
        precision, recall, f1: this snippet's scores.
    """

    id: str
    tokens: tuple[str, ...]
    d: np.ndarray
    c: tuple[str, ...]
    u: tuple[str, ...]
    predicted: tuple[tuple[str, int, int], ...]
    gold: tuple[tuple[str, int, int], ...]
    precision: float
    recall: float
    f1: float


def recovered_trees(pred: TupleBatch, split: ProbeSplit) -> list[RecoveredTree]:
    """The recovered tree of every snippet of `split`, from the probe's predicted tuples `pred`
    (one per snippet, in the split's order)."""
    per = score(pred, split.gold)
    pred_cons, gold_cons = constituents(pred), constituents(split.gold)
    tok = np.r_[0, np.cumsum(pred.lengths)]
    pairs = np.r_[0, np.cumsum(pred.lengths - 1)]
    out = []
    for i, ident in enumerate(split.ids):
        c_ids = pred.c[pairs[i] : pairs[i + 1]]
        u_ids = pred.u[tok[i] : tok[i + 1]]
        out.append(
            RecoveredTree(
                id=ident,
                tokens=split.tuples[i].tokens.texts,
                d=pred.d[pairs[i] : pairs[i + 1]],
                c=tuple(pred.c_names[k] for k in c_ids),
                u=tuple(pred.u_names[k] for k in u_ids),
                predicted=tuple(pred_cons.of(i)),
                gold=tuple(gold_cons.of(i)),
                precision=float(per.precision[i]),
                recall=float(per.recall[i]),
                f1=float(per.f1[i]),
            )
        )
    return out
