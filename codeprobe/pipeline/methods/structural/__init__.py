"""Structural probes (Hewitt & Manning, NAACL 2019, N19-1419) as a method of a run: the distance
and depth probes of every hidden state on the gold token tree, stacked and trained on AST-Probe's
hidden-state cache (no forward pass of their own), the hidden state chosen on validation; at it
(or at all) the control tree (Hewitt & Liang, arXiv:1909.03368: selectivity) and the
random-weights model; the linear baseline and the embedding layer beside every score; its
summary section, report section, HTML view and checkpoint-series curve.

    RUN/structural/<model>/<language>-<dataset>/task.json      the gold tree: every hidden state,
                                                               with the linear baseline's scores
                                                control.json   the control tree
                                                random.json    the random-weights model
                                                probes/        the task's fitted probes:
                                                    distance/, depth/ (safetensors + JSON)
"""

from __future__ import annotations

from codeprobe.pipeline.methods.structural.report import SERIES, report
from codeprobe.pipeline.methods.structural.snippets import per_snippet
from codeprobe.pipeline.methods.structural.steps import run, shared_pass_tokens
from codeprobe.pipeline.methods.structural.summary import model_info, summarize
from codeprobe.pipeline.registry import Method

METHOD = Method(
    name="structural",
    title="Structural probes",
    needs=frozenset({"hidden_states"}),
    run=run,
    summarize=summarize,
    report=report,
    series=SERIES,
    model_info=model_info,
    shared_pass=shared_pass_tokens,
    per_snippet=per_snippet,
)
