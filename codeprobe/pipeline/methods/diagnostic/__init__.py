"""Diagnostic classifiers with control tasks and MDL (Hewitt & Liang, EMNLP 2019,
arXiv:1909.03368; Voita & Titov, EMNLP 2020, arXiv:2003.12298) as a method of a run: per task
(parent node type, depth bucket), softmax regression on every hidden state at once, trained on
AST-Probe's cached hidden states (no forward pass of their own where that cache holds them),
with the control task, selection on validation, and the online codelength; its summary section,
report section, checkpoint-series curve and per-snippet scores.

    RUN/diagnostic/<model>/<language>-<dataset>/<task>.json          the fit (task and control)
                                                <task>.random.json   the random-weights model's
                                                <task>.mdl.json      the online codes
"""

from __future__ import annotations

from codeprobe.pipeline.methods.diagnostic.report import SERIES, report
from codeprobe.pipeline.methods.diagnostic.snippets import per_snippet
from codeprobe.pipeline.methods.diagnostic.steps import NAME, run
from codeprobe.pipeline.methods.diagnostic.summary import model_info, summarize
from codeprobe.pipeline.registry import Method

METHOD = Method(
    name=NAME,
    title="Diagnostic classifiers",
    needs=frozenset({"hidden_states"}),
    run=run,
    summarize=summarize,
    report=report,
    series=SERIES,
    model_info=model_info,
    per_snippet=per_snippet,
)
