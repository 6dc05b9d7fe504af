"""Attention-head relations (Clark et al., BlackboxNLP 2019, arXiv:1906.04341; CodeSyntax, Shen
et al., EMNLP 2022 Findings, arXiv:2210.14473; SAS, Chen et al., ICLR 2024, arXiv:2309.07311)
as a method of a run: per shard, the heads scores of its snippets (from CAT-probing's forward
pass where its settings allow: no second pass), the random-weights model's pass over validation
and test, and the reduce; its summary section, report section, checkpoint-series curve and
HTML views.

    RUN/heads/<model>/<language>-<dataset>/shard-NNNN.npz      a shard's heads scores (`_key`)
                                           random_weights.npz  the random-weights model's
                                           test_snippets.npz   the reduce's per-test-snippet hits
                                                               (what a series' onsets read)
                                           summary.json        the reduce's result (`_key`)
"""

from __future__ import annotations

from codeprobe.pipeline.methods.heads.report import SERIES, report
from codeprobe.pipeline.methods.heads.snippets import per_snippet
from codeprobe.pipeline.methods.heads.steps import NAME, attention_share, intermediates, read_attention, run
from codeprobe.pipeline.methods.heads.summary import model_info, summarize
from codeprobe.pipeline.registry import Method

METHOD = Method(
    name=NAME,
    title="Attention-head relations",
    needs=frozenset({"attention"}),
    run=run,
    summarize=summarize,
    report=report,
    series=SERIES,
    model_info=model_info,
    intermediates=intermediates,
    attention_share=attention_share,
    read_attention=read_attention,
    per_snippet=per_snippet,
)
