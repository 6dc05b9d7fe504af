"""`codeprobe heads --html` in headless Chromium: no console error, no request leaves the page,
the relation picker marks that relation's edges on the code, and a chosen head shows its
attention row from the edge's head token. Screenshots go to $CODEPROBE_SCREENSHOTS (default:
the test's temporary folder)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cat.cat_models import tiny_bert_dir
from click.testing import CliRunner
from viz.browser import console_problems, open_browser, requested_urls, wait_ready

from codeprobe.cli import main

CODE = """def scale(xs, k=2):
    if not xs:
        return []
    ys = [x * k for x in xs]
    return sorted(ys, reverse=True)
"""


def choose(driver, testid: str, value) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("css selector", f"[data-testid={testid}]")).select_by_value(str(value))


def marked(driver, cls: str) -> list[int]:
    return [
        int(s.get_attribute("data-i")) for s in driver.find_elements("css selector", f"[data-testid=heads-code] .{cls}")
    ]


def test_heads_page(tmp_path):
    snippet = tmp_path / "scale.py"
    snippet.write_text(CODE, encoding="utf-8")
    page = tmp_path / "scale.html"
    result = CliRunner().invoke(
        main, ["heads", str(snippet), "--model", str(tiny_bert_dir()), "--html", str(page), "--json"]
    )
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    shots = Path(os.environ.get("CODEPROBE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with open_browser() as driver:
        url = page.resolve().as_uri()
        driver.get(url)
        wait_ready(driver)
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, 20).until(
            lambda d: d.find_element("tag name", "body").get_attribute("data-heads-ready") == "1"
        )
        assert console_problems(driver) == []
        urls = requested_urls(driver, url)
        assert all(u == url or u.startswith(("data:", "blob:")) for u in urls), urls
        assert driver.find_element("css selector", "[data-testid=heads-code]").text.strip() == CODE.strip()
        names = [r["name"] for r in obj["relations"]]
        r = names.index("call:function->arguments")
        choose(driver, "relation-select", r)
        edge = obj["edges"][obj["relations"][r]["edges"][0]]
        assert marked(driver, "sh") == [edge["head"]]
        assert marked(driver, "sd") == list(range(*edge["dependent"]))
        # A head's cell: the shading is its attention row from the head token, the top 1 in bold.
        driver.find_element("css selector", "[data-testid=relation-heads] tr:nth-child(3) td:nth-child(3)").click()
        hit = edge["scores"]["head->dep/first"]["hits"]["1"]
        top = marked(driver, "tk")
        assert len(top) == 1 and top[0] != edge["head"]
        assert (top[0] == edge["dependent"][0]) == ([1, 1] in hit)
        weights = [
            float(s.get_attribute("data-weight"))
            for s in driver.find_elements("css selector", "[data-testid=heads-code] span.t")
        ]
        assert max(weights[: edge["head"]] + weights[edge["head"] + 1 :]) == weights[top[0]]
        driver.save_screenshot(str(shots / "heads-call-layer1-head1.png"))
        assert console_problems(driver) == []
