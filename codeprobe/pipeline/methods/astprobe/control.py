"""A control task for AST-Probe's label accuracies (c, u): Hewitt & Liang's control (EMNLP 2019,
arXiv:1909.03368) reused from the diagnostic classifiers (`ControlTask`), and the selectivity
task accuracy - control accuracy.

The convention ("type-keyed label control"):
- u control: each token type (its text) gets a u label drawn from the training split's u
  distribution over tokens;
- c control: each adjacent pair gets a c label drawn from the training split's c distribution
  over pairs, keyed by the pair of types (left text, right text). AST-Probe scores c from the
  difference of the pair's two projected vectors, so the classifier sees both tokens: keyed by
  both, the control is a lookup the c classifier can memorise exactly as the task's c is one it
  must learn; keyed by the left type alone it would ignore half of what the classifier reads.
Both are fixed by the seed and the texts alone (`ControlTask.labels`), so every split agrees. d
is kept as it is: the control probe is the same probe (one projection, label vectors) trained on
(d, control c, control u) with the same recipe.

It lives in the pipeline layer because the probing methods do not import each other (the
import contracts in pyproject.toml): here AST-Probe's fitting meets the diagnostic
classifiers' control task and accuracy evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codeprobe.errors import InputError
from codeprobe.probes.astprobe.evaluation import predict
from codeprobe.probes.astprobe.fitting import fit
from codeprobe.probes.astprobe.probe import ProbeModule
from codeprobe.probes.astprobe.probe_data import ProbeData
from codeprobe.probes.astprobe.targets import Targets
from codeprobe.probes.astprobe.train_config import TrainConfig
from codeprobe.probes.astprobe.tuple_batch import TupleBatch
from codeprobe.probes.astprobe.vocab import UNKNOWN_ID, LabelVocab
from codeprobe.probes.diagnostic.control import ControlTask
from codeprobe.probes.diagnostic.evaluation import AccuracyEvaluation

_PAIR = "\x1f"  # joins a pair's two texts into the c control's key (a unit separator: not in code)


@dataclass(frozen=True)
class LabelControlTasks:
    """The c and u control tasks of one training split.

    Attributes:
        c, u: their control tasks, over ids into `c_names` and `u_names`.
        c_names, u_names: the training split's c and u labels (the ids' names).
    """

    c: ControlTask
    u: ControlTask
    c_names: tuple[str, ...]
    u_names: tuple[str, ...]

    @classmethod
    def of(cls, train: TupleBatch, *, random_state: int = 0) -> LabelControlTasks:
        """The control tasks of the training gold `train`: its empirical c (over pairs) and u
        (over tokens) distributions, seeded by `random_state`.

        Raises:
            InputError: no training pair, or a seed that is not an integer.
        """
        return cls(
            c=ControlTask.from_labels([train.c], len(train.c_names), random_state=random_state),
            u=ControlTask.from_labels([train.u], len(train.u_names), random_state=random_state),
            c_names=train.c_names,
            u_names=train.u_names,
        )

    def gold(self, gold: TupleBatch, texts: Sequence[str]) -> TupleBatch:
        """`gold` with its c and u replaced by control labels; `texts` are the batch's token texts,
        (sum(lengths),) in its order. d is kept.

        Raises:
            InputError: as many texts as tokens are needed.
        """
        texts = np.asarray(texts, dtype=object)
        if texts.shape != gold.u.shape:
            raise InputError(f"{texts.size} token texts for {gold.u.size} tokens")
        last = np.cumsum(gold.lengths) - 1
        left = np.delete(np.arange(texts.size), last)  # every token with a right neighbour
        keys = [f"{a}{_PAIR}{b}" for a, b in zip(texts[left], texts[left + 1])]
        return TupleBatch(
            lengths=gold.lengths,
            d=gold.d,
            c=self.c.labels(keys),
            u=self.u.labels(list(texts)),
            c_names=self.c_names,
            u_names=self.u_names,
        )


@dataclass(frozen=True, eq=False)
class LabelControl:
    """The label accuracies of a task probe and of its control probe on the same test snippets.

    Attributes:
        task_c, task_u: the task probe's right c (per snippet, over its pairs) and u (over its tokens).
        control_c, control_u: the control probe's, against the control labels.
        control_epochs: epochs the control probe trained; control_best_epoch: the one kept.
    """

    task_c: AccuracyEvaluation
    task_u: AccuracyEvaluation
    control_c: AccuracyEvaluation
    control_u: AccuracyEvaluation
    control_epochs: int
    control_best_epoch: int

    def as_dict(self) -> dict:
        """JSON-ready: per label, the per-snippet right counts and sizes of task and control."""
        out: dict = {"control_epochs": self.control_epochs, "control_best_epoch": self.control_best_epoch}
        for name in ("task_c", "task_u", "control_c", "control_u"):
            ev = getattr(self, name)
            out[name] = {"correct": ev.correct.tolist(), "tokens": ev.tokens.tolist()}
        return out


def label_accuracies(
    module: ProbeModule, data: ProbeData, vocabs: tuple[LabelVocab, LabelVocab], device: str = "cpu"
) -> tuple[AccuracyEvaluation, AccuracyEvaluation]:
    """(c, u): the probe's right argmax labels per snippet of `data` (c over its n - 1 pairs, u
    over its n tokens). A gold label unseen in training is always wrong, as in `ProbeScores`."""
    pred = predict(module, data, vocabs, device).tuples
    enc = Targets.of(data, *vocabs)
    lengths = data.gold.lengths
    # -1 never equals a prediction: an unseen gold label counts wrong.
    c_gold = np.where(enc.c == UNKNOWN_ID, -1, enc.c)
    u_gold = np.where(enc.u == UNKNOWN_ID, -1, enc.u)
    c = AccuracyEvaluation.from_predictions(pred.c, c_gold, np.r_[0, np.cumsum(lengths - 1)])
    u = AccuracyEvaluation.from_predictions(pred.u, u_gold, np.r_[0, np.cumsum(lengths)])
    return c, u


def fit_label_control(
    splits: Sequence[ProbeData],
    texts: Sequence[Sequence[str]],
    task: tuple[ProbeModule, tuple[LabelVocab, LabelVocab]],
    rank: int,
    *,
    config: TrainConfig = TrainConfig(),
    random_state: int = 0,
) -> LabelControl:
    """Train the control probe and score both on test.

    Args:
        splits: (train, valid, test) at the task probe's hidden state.
        texts: each split's token texts, (sum(lengths),) in its order.
        task: the task probe's module and (c, u) vocabularies, trained on `splits[0]`.
        rank: the control probe's rank (the task probe's).
        random_state: seeds the control labels, the control probe's initialisation and batch order.

    Raises:
        ProbeDivergedError: the control probe never reached a finite validation loss.
    """
    tasks = LabelControlTasks.of(splits[0].gold, random_state=random_state)
    train, valid, test = (ProbeData(d.hidden_states, tasks.gold(d.gold, t), d.language) for d, t in zip(splits, texts))
    gold = train.gold
    vocabs = (  # one sequence of all training labels each: `build` counts labels, not snippets
        LabelVocab.build([[gold.c_names[i] for i in gold.c]]),
        LabelVocab.build([[gold.u_names[i] for i in gold.u]]),
    )
    result = fit(train, valid, {train.language: vocabs}, rank, config=config, random_state=random_state)
    task_c, task_u = label_accuracies(task[0], splits[2], task[1], config.device)
    control_c, control_u = label_accuracies(result.module, test, vocabs, config.device)
    return LabelControl(task_c, task_u, control_c, control_u, result.epochs, result.best_epoch)
