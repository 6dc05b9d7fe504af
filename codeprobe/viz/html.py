"""Self-contained HTML pages: the data as inline JSON, the drawing code and styles inlined.

Why hand-written SVG and canvas instead of a plotting library: plotly.js alone is ~3.5 MB
minified, Vega-Lite with Vega ~0.8 MB and Bokeh ~1 MB, inlined into every report; none draws
the explorer's views (token matrices with the CAT-score's masks, side-by-side constituency
trees) without custom code anyway; and drawing hundreds of token-pair matrices through a
declarative spec is slow. The page's whole code is ~75 kB (unminified), draws a 256 x 256 matrix as one
canvas image, and decodes a snippet's arrays only when it is chosen. The Content-Security-Policy
forbids every network request, so a page opens offline and leaks nothing.
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from codeprobe.files import json_value, write_atomic

_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; connect-src 'none'; base-uri 'none'; form-action 'none'"
)


@cache
def _asset(name: str) -> str:
    return resources.files("codeprobe.viz").joinpath("static", name).read_text(encoding="utf-8")


def page(data: dict[str, Any]) -> str:
    """One HTML document showing `data` (see `report_html` and `explorer_html` for its keys)."""
    payload = json.dumps(json_value(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # Inside <script>, "</script>" or "<!--" in a code snippet would end the element early.
    payload = payload.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    title = html.escape(str(data.get("title", "codeprobe")))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_asset('page.css')}</style></head>\n"
        "<body><header></header><nav></nav><main></main><footer></footer>\n"
        f'<script type="application/json" id="codeprobe-data">{payload}</script>\n'
        f"<script>{_asset('page.js')}</script>\n"
        # The onsets' section, only where there are onsets (`report_html`).
        + (f"<script>{_asset('onsets.js')}</script>\n" if data.get("onsets") else "")
        # One snippet's structural probes (`structural_page.structural_html`).
        + (f"<script>{_asset('structural.js')}</script>\n" if data.get("structural") else "")
        + "</body></html>\n"
    )


def report_html(
    series: list[dict[str, Any]],
    *,
    title: str = "codeprobe report",
    lines: list[str] = (),
    warnings: list[str] = (),
    footer: list[str] = (),
    onsets: dict[str, Any] | None = None,
) -> str:
    """A run report, or a comparison of several runs, models or checkpoints.

    series: one dict per (run, model, language, dataset[, step]): `label`, `model`, `language`,
        `dataset`, optional `step` (int, a checkpoint), `run`, for a checkpoint of a series
        `series` (its name, as its onsets name it) and `model_base` (what its steps share: one
        curve over the steps; default `model`), and what exists of
        `cat` (`layers` as in summary.json, each optionally with `score_ci`,
        `random_baseline_ci`, `positional_baseline_ci`; `heads`: {`n_heads`, `scores` (L x H)};
        `rates`: {`types`, `num`, `eligible`, `rate` (L x T), `rank` (L x T), `n_samples`};
        `types`, `kept_types`), `astprobe` (summary.json's, optionally with `labels`,
        `labels_hidden_state`, `labels_snippets`) and `explorer` (an `explorer_payload`).
    lines, warnings, footer: text shown under the title, highlighted, and at the end.
    onsets: the checkpoint series' onsets (a section after the curves): `rule` ({`name`,
        `text`}), `titles` ({method: its title}) and `records` (summary.json's `onsets`, each
        optionally with `run`, its run's name, in a comparison); None: no such section.
    """
    return page(
        {
            "kind": "report",
            "title": title,
            "lines": list(lines),
            "warnings": list(warnings),
            "footer": list(footer),
            "series": series,
            **({"onsets": onsets} if onsets and onsets.get("records") else {}),
        }
    )


def explorer_html(payload: dict[str, Any], *, title: str, lines: list[str] = (), warnings: list[str] = ()) -> str:
    """The snippet explorer alone, for `explorer_payload`'s output: the CAT view when it has one
    (kind "snippet"), else the gold and recovered trees (kind "trees")."""
    has_cat = any("cat" in s for s in payload.get("snippets", []))
    return page(
        {
            "kind": "snippet" if has_cat else "trees",
            "title": title,
            "lines": list(lines),
            "warnings": list(warnings),
            "explorer": payload,
        }
    )


def heads_html(obj: dict[str, Any], attention: Any) -> str:
    """`codeprobe heads --html`: one snippet's relation edges on its code, with a relation
    picker, each head's hits on them, and a chosen head's attention row from an edge's
    attending token.

    obj: the JSON object of `codeprobe heads` (`code`, `tokens` with `start`/`end` character
    offsets, `relations`, `edges`, `settings`, `n_layers`, `n_heads`, ...).
    attention: float (L, H, n, n) token attention over its tokens. Only the rows of attending
    tokens (head tokens, dependents' first tokens) are stored, each scaled to uint8 by its
    maximum.
    """
    import numpy as np

    from codeprobe.viz.explorer import pack

    a = np.asarray(attention, dtype=np.float64)
    n_layers, n_heads, n, _ = a.shape
    edges = obj["edges"]
    attending = sorted({e["head"] for e in edges} | {e["dependent"][0] for e in edges})
    rows = a[:, :, attending].reshape(n_layers * n_heads, len(attending), n)
    scale = rows.max(axis=-1) if n else np.zeros(rows.shape[:2])
    quant = np.rint(rows / np.where(scale > 0, scale, 1.0)[..., None] * 255).astype(np.uint8)
    info = obj["model"]
    lines = [
        f"{info['name']} ({info['architecture']}, {info['kind']}, {obj['n_layers']} layers x {obj['n_heads']} heads), "
        f"{obj['language']}; {obj['input']['n_kept_tokens']} of {obj['input']['n_code_tokens']} code tokens read, "
        f"{obj['input']['n_edges_scored']} of {obj['input']['n_edges']} relation edges scored "
        f"({obj['input']['n_edges_dropped']} dropped: a token the model did not read)"
    ]
    notes = list(obj.get("notes", []))
    warnings = [x for x in notes if x.startswith(info["name"])]
    lines += [x for x in notes if x not in warnings]
    heads = {k: obj[k] for k in ("code", "tokens", "relations", "edges", "settings", "n_layers", "n_heads")}
    heads["rows"] = {
        "attending": attending,
        "weights": pack(quant),
        "scale": [round(float(x), 6) for x in scale.ravel()],
    }
    return page(
        {
            "kind": "heads",
            "title": f"{obj['file']}: relation edges and the heads of {info['name']}",
            "lines": lines,
            "warnings": warnings,
            "heads": heads,
        }
    )


def write_html(text: str, path: str | Path) -> Path:
    """Write a page (UTF-8) and return its path."""
    return write_atomic(path, text)
