"""A run's reports: Markdown with PNG plots (`markdown`), the interactive HTML page (`html`), the
checkpoint series over training (`over_training`), from `summary.json`
(`codeprobe.pipeline.summary`) and each registered method's report views."""

from codeprobe.pipeline.report.html import write_report_html
from codeprobe.pipeline.report.markdown import render_report

__all__ = ["render_report", "write_report_html"]
