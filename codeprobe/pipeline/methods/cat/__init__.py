"""CAT-probing (Chen et al., EMNLP 2022 Findings, arXiv:2210.04633) as a method of a run: one step
per shard of snippets (a forward pass with attention, scored as it streams), one reduce over the
shards; its summary section, report section, checkpoint-series curve and HTML views.

    RUN/cat/<model>/<language>-<dataset>/shard-NNNN.npz             a shard's scorer state (`_key`)
                                         heads-NNNN.npz             its per-head rows (paper/all)
                                         shard-NNNN.hidden_states/  AST-Probe's hidden states,
                                                                    pooled by the same forward pass
                                                                    (moved into its cache)
                                         samples.parquet, layers.parquet, rates.parquet,
                                         summary.json               the reduce's outputs (`_key`)
"""

from __future__ import annotations

from codeprobe.pipeline.methods.cat.report import SERIES, report
from codeprobe.pipeline.methods.cat.snippets import per_snippet
from codeprobe.pipeline.methods.cat.steps import intermediates, run
from codeprobe.pipeline.methods.cat.summary import html_view, model_info, summarize
from codeprobe.pipeline.registry import Method

METHOD = Method(
    name="cat",
    title="CAT-probing",
    needs=frozenset({"attention"}),
    run=run,
    summarize=summarize,
    report=report,
    series=SERIES,
    model_info=model_info,
    html_view=html_view,
    intermediates=intermediates,
    per_snippet=per_snippet,
)
