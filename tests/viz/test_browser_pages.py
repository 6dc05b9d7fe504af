"""The single-snippet pages in headless Chromium: `codeprobe cat --html` and `codeprobe astprobe
recover --html`. No console error, no request leaves the page, the views are populated, and
choosing a layer, a head or a heat-map cell changes what is shown. Screenshots go to
$CODEPROBE_SCREENSHOTS (default: the test's temporary folder)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from browser import console_problems, open_browser, requested_urls, wait_ready
from cat.cat_models import tiny_gpt2_dir, tiny_roberta_dir
from click.testing import CliRunner
from shared_data import cosqa_functions

from codeprobe.cli import main

CODE = cosqa_functions()[1][1]


def screenshot_dir(tmp_path: Path) -> Path:
    out = Path(os.environ.get("CODEPROBE_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    return out


def open_page(driver, path: Path) -> None:
    driver.get(path.resolve().as_uri())
    wait_ready(driver)


def assert_offline_and_clean(driver, path: Path) -> None:
    assert console_problems(driver) == []
    url = path.resolve().as_uri()
    urls = requested_urls(driver, url)
    assert url in urls and all(u == url or u.startswith(("data:", "blob:")) for u in urls), urls


def shown_score(driver) -> float:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda d: d.find_elements("css selector", "[data-testid=cat-summary]"))
    return float(driver.find_element("css selector", "[data-testid=cat-summary]").get_attribute("data-score"))


def choose(driver, testid: str, value) -> None:
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("css selector", f"[data-testid={testid}]")).select_by_value(str(value))


def test_cat_snippet_page(tmp_path):
    snippet = tmp_path / "split.py"
    snippet.write_text(CODE, encoding="utf-8")
    page = tmp_path / "split.html"
    model = str(tiny_roberta_dir())
    result = CliRunner().invoke(main, ["cat", str(snippet), "--model", model, "--per-head", "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert "CAT-score per head" in result.stdout and page.stat().st_size < 2_000_000
    scores = CliRunner().invoke(main, ["cat", str(snippet), "--model", model, "--per-head", "--json"])
    rows = json.loads(scores.stdout)["layers"]
    want = {(r["layer"], r["head"]): r["score"] for r in rows}
    assert len(want) == 3 * 5  # 3 layers x (head mean + 4 heads)

    with open_browser() as driver:
        open_page(driver, page)
        assert_offline_and_clean(driver, page)
        code = driver.find_element("css selector", "[data-testid=code]").text
        assert code.strip() == CODE.strip()
        assert len(driver.find_elements("css selector", "[data-testid=matrices] canvas")) == 3
        cells = driver.find_elements("css selector", "table.heat td[data-layer]")
        assert len(cells) == 15
        # The page counts the pairs itself (masks and distances): its score is the library's.
        assert shown_score(driver) == pytest.approx(want[(0, -1)], abs=1e-9)
        driver.save_screenshot(str(screenshot_dir(tmp_path) / "cat-snippet-layer0-mean.png"))
        choose(driver, "layer-select", 2)
        assert shown_score(driver) == pytest.approx(want[(2, -1)], abs=1e-9)
        choose(driver, "head-select", 1)
        assert shown_score(driver) == pytest.approx(want[(2, 1)], abs=1e-9)
        assert "layer 2, head 1" in driver.find_element("css selector", "[data-testid=matrices] h4").text
        driver.find_element("css selector", "table.heat td[data-layer='1'][data-head='3']").click()
        assert shown_score(driver) == pytest.approx(want[(1, 3)], abs=1e-9)
        assert driver.find_element("css selector", "table.heat td.sel").get_attribute("data-head") == "3"
        driver.save_screenshot(str(screenshot_dir(tmp_path) / "cat-snippet-layer1-head3.png"))
        assert console_problems(driver) == []


def test_cat_snippet_page_of_a_decoder_counts_the_causal_pairs(tmp_path):
    """A decoder's page recounts the CAT-score over the pairs with the key at or before the
    query, as the library scored them (docs/cat.md), and says so."""
    snippet = tmp_path / "split.py"
    snippet.write_text(CODE, encoding="utf-8")
    page = tmp_path / "split.html"
    model = str(tiny_gpt2_dir())
    result = CliRunner().invoke(main, ["cat", str(snippet), "--model", model, "--per-head", "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert "mask causal" in result.stdout
    rows = json.loads(CliRunner().invoke(main, ["cat", str(snippet), "--model", model, "--per-head", "--json"]).stdout)
    assert rows["settings"]["mask"] == "causal"
    want = {(r["layer"], r["head"]): r["score"] for r in rows["layers"]}
    with open_browser() as driver:
        open_page(driver, page)
        assert_offline_and_clean(driver, page)
        assert shown_score(driver) == pytest.approx(want[(0, -1)], abs=1e-9)
        assert "key at or before the query" in driver.find_element("css selector", "[data-testid=cat-summary]").text
        choose(driver, "layer-select", 1)
        choose(driver, "head-select", 2)
        assert shown_score(driver) == pytest.approx(want[(1, 2)], abs=1e-9)
        driver.save_screenshot(str(screenshot_dir(tmp_path) / "cat-snippet-decoder.png"))
        assert console_problems(driver) == []


def test_recover_trees_page(tmp_path):
    from codeprobe.probes.astprobe.estimator import ASTProbe
    from codeprobe.probes.astprobe.train_config import TrainConfig

    model = str(tiny_roberta_dir())
    probe = ASTProbe(
        rank=8, hidden_state=2, language="python", cache_dir=tmp_path / "cache", config=TrainConfig(max_epochs=2)
    ).fit(cosqa_functions()[:40], model=model)
    probe.save(tmp_path / "probe")
    snippet = tmp_path / "maximum.py"
    snippet.write_text("def maximum(a, b):\n    if a > b:\n        return a\n    return b\n")
    page = tmp_path / "trees.html"
    result = CliRunner().invoke(
        main,
        [
            "astprobe",
            "recover",
            str(snippet),
            "--probe",
            str(tmp_path / "probe"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--html",
            str(page),
        ],
    )
    assert result.exit_code == 0, result.output
    with open_browser() as driver:
        open_page(driver, page)
        assert_offline_and_clean(driver, page)
        gold = driver.find_element("css selector", "[data-testid=tree-gold]")
        recovered = driver.find_element("css selector", "[data-testid=tree-recovered]")
        assert "function_definition" in gold.text and recovered.text
        assert gold.find_elements("css selector", ".nt") and recovered.find_elements("css selector", ".nt")
        marked = driver.find_elements("css selector", ".tree .nt.miss, .tree .nt.extra")
        matched = driver.find_elements("css selector", ".tree .nt.match")
        assert marked  # two epochs on a random model: some constituents differ
        assert len(marked) + len(matched) == len(gold.find_elements("css selector", ".nt")) + len(
            recovered.find_elements("css selector", ".nt")
        )
        # Hovering a constituent lights its tokens in the code.
        from selenium.webdriver import ActionChains

        line = gold.find_element("css selector", "div[data-lo]")
        ActionChains(driver).move_to_element(line).perform()
        assert driver.find_elements("css selector", "[data-testid=code] span.hl")
        driver.save_screenshot(str(screenshot_dir(tmp_path) / "recover-trees.png"))
