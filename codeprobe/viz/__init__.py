"""Interactive, self-contained HTML views of codeprobe results: the run report (curves with
confidence bands, layer x head CAT-scores, type rates, AST-Probe tables) and the snippet
explorer (token attention beside tree distances, the CAT-score's pairs, gold and recovered
trees, a run's chosen heads on the relation edges). Hand-written SVG and canvas drawing,
inlined: a page fetches nothing."""

from codeprobe.viz.explorer import ChosenHead, ChosenHeads, choose_snippets, explorer_payload, nonterminal_scores
from codeprobe.viz.html import explorer_html, heads_html, page, report_html, write_html

__all__ = [
    "ChosenHead",
    "ChosenHeads",
    "choose_snippets",
    "explorer_html",
    "explorer_payload",
    "heads_html",
    "nonterminal_scores",
    "page",
    "report_html",
    "write_html",
]
