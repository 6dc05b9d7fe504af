"""AST-Probe (Hernández López et al., ASE 2022): recover a snippet's AST from a model's hidden
states through a linear projection (see docs/astprobe-results.md for numbers).

    preprocess    the reference's docstring removal
    tuples        (d, c, u) from a tree          recovery    trees from (d, c, u) (constituents)
    tuple_batch   (d, c, u) of a batch, flat     tree_scores P / R / F1, recall per label
    tree_drawing  a tree as text or networkx
    probe         the torch module and loss      probe_data  a split's hidden states, gold (ProbeData)
    train_config  TrainConfig, PAPER_TRAINING    targets     gold as the loss reads it, batches
    probe_run     one probe's schedule, early    fitting     fit / fit_many on hidden states
                  stopping, guard, FitResult     evaluation  predict / evaluate on hidden states
    cache / data  token hidden states, once per  estimator   ASTProbe: fit, score, predict, save
                  model (HiddenStateCache)
    sweeps        fitted probe sweeps, baselines multilingual  shared subspace, transfer
    params        ASTProbe's argument checks     probe_files  a fitted probe on disk (save / load)
    recovered_tree  a predicted tree beside its gold tree (RecoveredTree)
"""

from codeprobe.model import random_weights  # the paper's random baseline's model
from codeprobe.probes.astprobe.cache import HiddenStateCache, cached_hidden_states
from codeprobe.probes.astprobe.data import ProbeSplit, prepare_split
from codeprobe.probes.astprobe.estimator import ASTProbe
from codeprobe.probes.astprobe.evaluation import ProbeScores, evaluate, predict
from codeprobe.probes.astprobe.fitting import fit, fit_many
from codeprobe.probes.astprobe.multilingual import LanguageProbe, fit_languages, transfer, transfer_matrix
from codeprobe.probes.astprobe.preprocess import remove_docstrings
from codeprobe.probes.astprobe.probe import ProbeModule
from codeprobe.probes.astprobe.probe_data import ProbeData
from codeprobe.probes.astprobe.probe_run import FitResult, ProbeDivergedError
from codeprobe.probes.astprobe.recovered_tree import RecoveredTree
from codeprobe.probes.astprobe.recovery import BAD_ROOT, Constituents, constituents, split_spans
from codeprobe.probes.astprobe.sweeps import SweepPoint, select_on_validation, sweep
from codeprobe.probes.astprobe.train_config import PAPER_TRAINING, TrainConfig
from codeprobe.probes.astprobe.tree_drawing import render_tree, tree_to_networkx
from codeprobe.probes.astprobe.tree_scores import LabelRecall, SnippetScores, recall_by_label, score
from codeprobe.probes.astprobe.tuple_batch import TupleBatch
from codeprobe.probes.astprobe.tuples import EMPTY, SEP, ASTTuple, code_tuple, tree_tuple
from codeprobe.probes.astprobe.vocab import UNKNOWN, LabelVocab

__all__ = [
    "BAD_ROOT",
    "EMPTY",
    "PAPER_TRAINING",
    "SEP",
    "UNKNOWN",
    "ASTProbe",
    "ASTTuple",
    "Constituents",
    "FitResult",
    "HiddenStateCache",
    "LabelRecall",
    "LabelVocab",
    "LanguageProbe",
    "ProbeData",
    "ProbeDivergedError",
    "ProbeModule",
    "ProbeScores",
    "ProbeSplit",
    "RecoveredTree",
    "SnippetScores",
    "SweepPoint",
    "TrainConfig",
    "TupleBatch",
    "cached_hidden_states",
    "code_tuple",
    "constituents",
    "evaluate",
    "sweep",
    "fit",
    "fit_languages",
    "fit_many",
    "predict",
    "prepare_split",
    "random_weights",
    "recall_by_label",
    "remove_docstrings",
    "render_tree",
    "select_on_validation",
    "score",
    "split_spans",
    "transfer",
    "transfer_matrix",
    "tree_to_networkx",
    "tree_tuple",
]
