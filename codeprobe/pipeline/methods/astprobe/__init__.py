"""AST-Probe (Hernández López et al., ASE 2022, arXiv:2206.11719) as a method of a run: the
sweep over hidden states (selected on validation), the random-weights baseline, the rank sweep at
the selected hidden state; its summary section, report section and checkpoint-series curve.

    RUN/astprobe/<model>/<language>-<dataset>/hidden_states.json   the sweep over hidden states
                                              random.json          the random-weights model's sweep
                                              ranks.json           the rank sweep at the best one
                                              probes/              the fitted probes (safetensors):
                                                  hidden_state_HH_rank_RRR/
"""

from __future__ import annotations

from codeprobe.pipeline.methods.astprobe.report import SERIES, report
from codeprobe.pipeline.methods.astprobe.snippets import per_snippet
from codeprobe.pipeline.methods.astprobe.steps import run, shared_pass_tokens
from codeprobe.pipeline.methods.astprobe.summary import model_info, summarize
from codeprobe.pipeline.registry import Method

METHOD = Method(
    name="astprobe",
    title="AST-Probe",
    needs=frozenset({"hidden_states"}),
    run=run,
    summarize=summarize,
    report=report,
    series=SERIES,
    model_info=model_info,
    shared_pass=shared_pass_tokens,
    per_snippet=per_snippet,
)
