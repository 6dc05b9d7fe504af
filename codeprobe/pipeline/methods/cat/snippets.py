"""CAT-probing's per-snippet scores over a checkpoint series (`Method.per_snippet`): what the
series' onsets rest on."""

from __future__ import annotations

from typing import Any

import numpy as np

from codeprobe.onsets import SnippetScores
from codeprobe.pipeline.runfolder import ResultFolder


def per_snippet(folder: ResultFolder, section: dict[str, Any]) -> SnippetScores | None:
    """Each sample's head-mean CAT-score per transformer layer (the reduce's samples.parquet;
    NaN where the sample was skipped): a layer's CAT-score is their mean. None: no samples
    written."""
    import pyarrow.parquet as pq

    from codeprobe.probes.cat.results import MEAN_HEAD

    path = folder.file("samples.parquet")
    if not path.exists():
        return None
    table = pq.read_table(path, columns=["sample_id", "layer", "head", "score"], filters=[("head", "==", MEAN_HEAD)])
    ids, row = np.unique(table.column("sample_id").to_numpy(zero_copy_only=False).astype(str), return_inverse=True)
    layers, column = np.unique(table.column("layer").to_numpy(), return_inverse=True)
    values = np.full((ids.size, layers.size), np.nan)
    values[row, column] = table.column("score").to_numpy(zero_copy_only=False)
    return SnippetScores(tuple(ids.tolist()), tuple(int(x) for x in layers), values)
