"""`codeprobe structural predict --html`: one snippet's gold and predicted token trees (arcs over
its tokens) and its gold and predicted distance matrices side by side (heat maps), with its
UUAS, DSpr, NSpr and root accuracy beside the linear baseline (Hewitt & Manning, NAACL 2019,
N19-1419). The page is `html.page`'s (inline data, no request); `static/structural.js` draws it.
"""

from __future__ import annotations

from typing import Any

from codeprobe.viz.html import page


def structural_html(obj: dict[str, Any]) -> str:
    """The page of one prediction.

    obj: the JSON object of `codeprobe structural predict --json`: `file`, `code`, `tokens`
    (`text`, `type`, `start`, `end`), `gold_heads`, `gold_depths`, `gold_distance` and
    `predicted_distance` (n x n), `predicted_heads`, `predicted_depths`, the scores (`uuas`,
    `uuas_correct`, `uuas_total`, `dspr`, `nspr`, `root_correct`, `linear_baseline`),
    `hidden_state` ({`distance`, `depth`}), `rank`, `target`, `head_rule`, `model` ({`name`, ...}).
    """
    model = obj["model"]
    lines = [
        f"{model['name']}, {obj['language']}, {len(obj['tokens'])} tokens; probe {obj['probe']}",
        f"UUAS {obj['uuas']:.3f} (linear baseline {obj['linear_baseline']['uuas']:.3f})",
    ]
    return page(
        {
            "kind": "structural",
            "title": f"{obj['file']}: structural probes of {model['name']}",
            "lines": lines,
            "structural": obj,
        }
    )
