"""Pages are self-contained: everything inline, a policy that forbids requests, data that
survives any code text."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from codeprobe.viz import explorer_html, page, report_html


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.scripts, self._in = [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in = dict(attrs).get("id") if tag == "script" else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "codeprobe-data":
            self.scripts.append(data)


def parsed(text: str) -> _Collect:
    c = _Collect()
    c.feed(text)
    return c


def test_nothing_is_loaded_from_outside():
    text = report_html([{"label": "m", "model": "m", "language": "python", "dataset": "d"}])
    c = parsed(text)
    for tag, attrs in c.tags:
        assert "src" not in attrs and tag not in ("link", "img", "iframe"), (tag, attrs)
        assert not any(re.match(r"\s*(https?:)?//", v or "") for v in attrs.values()), (tag, attrs)
    csp = next(a["content"] for t, a in c.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")  # the SVG namespace is a name, not a fetch
    assert "https://" not in text


def test_data_survives_code_that_looks_like_markup():
    code = 'def f():\n    return "</script><script>alert(1)</script><!-- \u2028"\n'
    payload = {"snippets": [{"id": "x", "code": code}], "nan": float("nan")}
    text = explorer_html(payload, title="t </title>")
    c = parsed(text)
    (data,) = c.scripts
    back = json.loads(data)
    assert back["explorer"]["snippets"][0]["code"] == code and back["explorer"]["nan"] is None
    assert back["kind"] == "trees" and "<title>t &lt;/title&gt;</title>" in text
    assert page({"title": "x"}).count("<script") == 2
