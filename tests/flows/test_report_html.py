"""A run's interactive report: report.html and the explorer sample written by the flow, per-head
CAT rows, a `codeprobe report` comparison of two copies of the run labelled as checkpoint steps
(the run's own intervals and validation selection), the attention-head relations section (and
none without heads), and the pages in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from astprobe.tiny_model import tiny_model_dir  # noqa: F401  (session fixture)
from click.testing import CliRunner
from flow_configs import small_config

from codeprobe.cli import main
from codeprobe.pipeline.flow import probing_flow

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "viz"))
from browser import console_problems, open_browser, requested_urls, wait_ready  # noqa: E402

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(scope="module")
def run(tiny_model_dir, python_jsonl, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("html") / "run"
    probing_flow(config=small_config(tiny_model_dir, python_jsonl, explorer_snippets=4), out_dir=str(out))
    return out


def test_flow_writes_report_html_explorer_and_head_rows(run):
    assert (run / "report.html").exists() and (run / "report.md").exists()
    (explorer,) = run.glob("explorer/*/*.json")
    payload = json.loads(explorer.read_text())
    test_ids = json.loads(next(run.glob("data/*/splits.json")).read_text())["test"]
    assert len(payload["snippets"]) == min(4, len(test_ids)) and {s["id"] for s in payload["snippets"]} <= set(test_ids)
    summary = json.loads(next(run.glob("cat/*/*/summary.json")).read_text())
    assert payload["kept_types"] == summary["settings"]["kept_types"]
    assert all("cat" in s and "astprobe" in s for s in payload["snippets"])
    labels = payload["labels"]
    assert labels["n_snippets"] == len(test_ids) and labels["rows"][0]["gold"] >= labels["rows"][-1]["gold"]

    # Per-head rows: their mean over heads' samples is the summary's per-head score.
    heads = [np.load(p) for p in sorted(run.glob("cat/*/*/heads-*.npz"))]
    assert len(heads) == 3
    layer = np.concatenate([h["layer"] for h in heads])
    head = np.concatenate([h["head"] for h in heads])
    score = np.concatenate([h["score"] for h in heads])
    assert set(head.tolist()) == {-1, 0, 1}
    means = pq.read_table(next(run.glob("cat/*/*/layers.parquet"))).to_pydict()
    for ell, mean in zip(means["layer"], means["score"]):
        sel = (layer == ell) & (head == -1) & ~np.isnan(score)
        assert np.nanmean(score[sel]) == pytest.approx(mean, abs=1e-5)  # the shard keeps float32 head means


def as_checkpoint(run: Path, out: Path, step: int) -> Path:
    """A copy of `run` whose results are labelled as checkpoint `step` of a series, and whose
    summary names the copy as its run. Every number is the run's own: nothing is added."""
    shutil.copytree(run, out)
    path = out / "summary.json"
    summary = json.loads(path.read_text())
    for r in summary["results"]:
        r["step"] = step
    summary["run"] = str(out)
    path.write_text(json.dumps(summary))
    return out


def n_bands(rows: list[dict], key: str) -> int:
    """1 if a curve over `rows` gets a confidence band on the page (more than one finite interval)."""
    return int(sum(1 for row in rows if row.get(key) and None not in row[key]) > 1)


def test_report_page_in_a_browser(run, tmp_path):
    import os

    from selenium.webdriver.support.ui import Select, WebDriverWait

    shots = Path(os.environ.get("CODEPROBE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    later = as_checkpoint(run, tmp_path / "run-later", step=2000)
    earlier = as_checkpoint(run, tmp_path / "run-earlier", step=1000)
    result = CliRunner().invoke(main, ["report", str(earlier), str(later), "--out", str(tmp_path / "cmp.md")])
    assert result.exit_code == 0, result.output
    pages = {"report": run / "report.html", "comparison": tmp_path / "cmp.html"}
    assert pages["comparison"].exists()
    payload = json.loads(next(run.glob("explorer/*/*.json")).read_text())

    with open_browser() as driver:
        for name, page in pages.items():
            url = page.resolve().as_uri()
            driver.get(url)
            wait_ready(driver)
            assert console_problems(driver) == []
            urls = requested_urls(driver, url)
            assert url in urls and all(u == url or u.startswith(("data:", "blob:")) for u in urls), urls
            charts = {c.get_attribute("data-chart") for c in driver.find_elements("css selector", "#curves .chart")}
            assert {
                "CAT-score by layer",
                "AST-Probe F1 by hidden state",
                "AST-Probe F1 by rank (selected hidden state)",
            } <= charts
            assert len(driver.find_elements("css selector", "#heads table.heat td[data-layer]")) == 2 * 3
            assert len(driver.find_elements("css selector", "[data-testid=rates-table] tr")) > 5
            for table in ("ast-layers", "ast-ranks", "ast-labels"):
                assert len(driver.find_elements("css selector", f"[data-testid={table}] tr")) > 1, table
            heads_charts = driver.find_elements(
                "css selector", "#head-relations .chart[data-chart='Attention-head relations by checkpoint step']"
            )
            assert len(heads_charts) == (name == "comparison")
            driver.set_window_size(1500, driver.execute_script("return document.body.scrollHeight") + 50)
            driver.save_screenshot(str(shots / f"run-{name}.png"))
            driver.set_window_size(1500, 1100)

        # The comparison shows both runs, the bands of the run's own intervals and the by-step view.
        assert "By checkpoint step" in charts
        (r,) = json.loads((later / "summary.json").read_text())["results"]
        a = r["astprobe"]
        cat_bands = sum(
            n_bands(r["cat"]["layers"], k) for k in ("score_ci", "random_baseline_ci", "positional_baseline_ci")
        )
        ast_bands = n_bands(a["hidden_states"], "f1_ci") + n_bands(a["baselines"]["random"], "f1_ci")
        assert (cat_bands, ast_bands) == (3, 2)  # the run computed every interval itself
        # CAT's intervals have width, so its bands show; the tiny random model's AST-Probe F1 is 0
        # with an interval of [0, 0] (a band of no height), but an interval all the same.
        assert all(lo < row["score"] < hi for row in r["cat"]["layers"] for lo, hi in [row["score_ci"]])
        for chart, per_run in (("CAT-score by layer", cat_bands), ("AST-Probe F1 by hidden state", ast_bands)):
            bands = driver.find_elements("css selector", f"#curves .chart[data-chart='{chart}'] path[opacity='0.16']")
            assert len(bands) == 2 * per_run, chart
        steps = driver.find_elements(
            "css selector", "#curves .chart[data-chart='By checkpoint step'] path[opacity='0.16']"
        )
        assert len(steps) == 1  # the selected hidden state's test F1 interval, over the two steps
        # The heads' by-step chart: the mean over relations and the mean best baseline, each with
        # the band of its interval over the two steps.
        h = r["heads"]["headline"]
        assert h["n_relations"] and None not in h["mean_ci"] + h["mean_best_baseline_ci"]
        steps = driver.find_elements(
            "css selector",
            "#head-relations .chart[data-chart='Attention-head relations by checkpoint step'] path[opacity='0.16']",
        )
        assert len(steps) == 2
        best = next(h for h in a["hidden_states"] if h["hidden_state"] == a["best_hidden_state"])
        assert a["selection"] == "validation" and best["valid_f1"] is not None
        table = driver.find_element("css selector", "[data-testid=ast-layers]").text
        assert "selected (validation)" in table
        lo, hi = best["f1_ci"]
        assert lo <= best["f1"] <= hi
        assert f"{lo:.3f} \u2013 {hi:.3f}" in table  # the run's own interval, in the F1 95% CI column

        # The explorer: choosing a snippet, a layer and a head changes what is shown.
        driver.get(pages["report"].resolve().as_uri())
        wait_ready(driver)

        def shown():
            WebDriverWait(driver, 20).until(lambda d: d.find_elements("css selector", "[data-testid=cat-summary]"))
            box = driver.find_element("css selector", "[data-testid=cat-summary]")
            return driver.find_element("css selector", "[data-testid=code]").text, float(
                box.get_attribute("data-score")
            )

        code0, score0 = shown()
        assert code0.strip() == payload["snippets"][0]["code"].strip()
        assert score0 == pytest.approx(payload["snippets"][0]["cat"]["scores"][0][0], abs=1e-6)
        Select(driver.find_element("css selector", "[data-testid=snippet-select]")).select_by_value("1")
        code2, score2 = shown()
        assert code2.strip() == payload["snippets"][1]["code"].strip() and code2 != code0
        assert score2 == pytest.approx(payload["snippets"][1]["cat"]["scores"][0][0], abs=1e-6)
        Select(driver.find_element("css selector", "[data-testid=layer-select]")).select_by_value("1")
        Select(driver.find_element("css selector", "[data-testid=head-select]")).select_by_value("0")
        assert shown()[1] == pytest.approx(payload["snippets"][1]["cat"]["scores"][1][1], abs=1e-6)
        # A cell of the run's layer x head map opens that layer and head in the explorer.
        cell = driver.find_element("css selector", "#heads td[data-layer='0'][data-head='1']")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
        cell.click()
        assert shown()[1] == pytest.approx(payload["snippets"][1]["cat"]["scores"][0][2], abs=1e-6)
        assert driver.find_elements("css selector", "[data-testid=tree-gold] .nt")
        driver.save_screenshot(str(shots / "run-explorer.png"))
        assert console_problems(driver) == []
        check_explorer_relations(driver, payload, payload["snippets"][1], shots)


def check_explorer_relations(driver, payload: dict, sn: dict, shots: Path) -> None:
    """Choosing a relation in the explorer marks its edges on the code, says which head the run
    chose for it (and its test score) and shows that head's attention row from the chosen edge's
    attending token; the other direction reads the dependent's row."""
    from selenium.webdriver.support.ui import Select

    info, h = payload["heads"], sn["heads"]
    find = lambda css: driver.find_elements("css selector", css)  # noqa: E731
    marked = lambda cls: [int(x.get_attribute("data-i")) for x in find(f"[data-testid=explorer-relation-code] .{cls}")]  # noqa: E731
    rows = {(r[0], r[1], r[2]): r[3] for r in h["rows"]}
    usable = [r for r in {e[0] for e in h["edges"]} if info["relations"][r]["heads"][info["headline"]]]
    r = max(usable, key=lambda x: (sum(e[0] == x for e in h["edges"]), -x))  # the relation with most edges here
    Select(find("[data-testid=explorer-relation-select]")[0]).select_by_value(str(r))
    mine = [e for e in h["edges"] if e[0] == r]
    _, head, start, end, hits = mine[0]
    assert marked("sh") == [head] and marked("sd") == list(range(start, end))
    assert marked("rh") == sorted({e[1] for e in mine})
    assert set(marked("rd")) == {j for e in mine for j in range(e[2], e[3])}
    chosen = info["relations"][r]["heads"][info["headline"]]
    summary = find("[data-testid=explorer-relation-summary]")[0]
    assert (summary.get_attribute("data-layer"), summary.get_attribute("data-head")) == (
        str(chosen["layer"]),
        str(chosen["head"]),
    )
    assert f"head {chosen['layer']}.{chosen['head']}" in summary.text and f"{chosen['test']:.3f}" in summary.text
    row = rows[(chosen["layer"], chosen["head"], head)]  # head->dep reads the head token's row
    bars = find("[data-testid=attention-bars] rect")
    assert [float(b.get_attribute("data-weight")) for b in bars] == row
    assert marked("from") == [head]
    driver.execute_script("arguments[0].scrollIntoView()", find("[data-testid=explorer-relations]")[0])
    driver.save_screenshot(str(shots / "run-explorer-relation.png"))
    # dep->head: the dependent's first token attends.
    other = 1 - info["headline"]
    Select(find("[data-testid=explorer-direction-select]")[0]).select_by_value(str(other))
    back = info["relations"][r]["heads"][other]
    if back is not None:
        assert marked("from") == [start]
        want = rows[(back["layer"], back["head"], start)]
        assert [float(b.get_attribute("data-weight")) for b in find("[data-testid=attention-bars] rect")] == want
    assert console_problems(driver) == []


def decimals(text: str) -> list[float]:
    """The decimal numbers of a text, in order (counts and percentages left out)."""
    return [float(x) for x in re.findall(r"[-+]?\d+\.\d+", text)]


def assert_shown(text: str, want: list[float | None]) -> None:
    """`text` shows exactly the numbers `want` (None: none), each to the page's 3 decimals."""
    got, want = decimals(text), [x for x in want if x is not None]
    assert len(got) == len(want) and all(abs(a - b) <= 6e-4 for a, b in zip(got, want)), (text, want)


def without_heads(run: Path, out: Path) -> Path:
    """A copy of `run` whose summary has no heads section (a run without the method)."""
    shutil.copytree(run, out)
    path = out / "summary.json"
    summary = json.loads(path.read_text())
    for r in summary["results"]:
        r.pop("heads", None)
    summary["run"] = str(out)
    path.write_text(json.dumps(summary))
    return out


def test_heads_section_in_a_browser(run, tmp_path):
    """The report's attention-head relations section shows summary.json's numbers: the headline
    (mean best-head score with its interval, mean best baseline, paired difference, share beating
    every baseline), the inputs, the relation x layer map, and per direction a row per relation
    (test edges, winning head, top-k with intervals, best baseline with its rules, the paired
    difference, the verdict) at the chosen k, sorted by a header's click. A run without heads has
    no such section."""
    from selenium.webdriver.support.ui import Select

    from codeprobe.pipeline.report.html import write_report_html

    (result,) = json.loads((run / "summary.json").read_text())["results"]
    heads = result["heads"]
    h, ks = heads["headline"], [str(k) for k in heads["settings"]["ks"]]
    block = next(b for b in heads["scores"] if (b["direction"], b["dependent"]) == (h["direction"], h["dependent"]))
    assert h["n_relations"] and block["relations"]
    plain = write_report_html(without_heads(run, tmp_path / "plain"), tmp_path / "plain.html")

    def row_of(table, name):
        (row,) = [tr for tr in table.find_elements("css selector", "tr") if tr.get_attribute("data-relation") == name]
        return [td.get_attribute("textContent") for td in row.find_elements("css selector", "td")]

    with open_browser() as driver:
        find = lambda css: driver.find_elements("css selector", css)  # noqa: E731
        driver.get((run / "report.html").resolve().as_uri())
        wait_ready(driver)
        assert console_problems(driver) == []
        assert "Attention-head relations" in [a.text for a in find("nav a")]
        (box,) = find("[data-testid=headrel-headline]")
        assert float(box.get_attribute("data-mean")) == pytest.approx(h["mean"])
        big = box.find_element("css selector", ".big").text
        assert f"over {h['n_relations']} relations" in big
        assert_shown(big, [h["mean"], *h["mean_ci"]])
        assert_shown(
            box.text,
            [h["mean"], *h["mean_ci"], h["mean_best_baseline"], *h["mean_best_baseline_ci"], h["mean_difference"]]
            + h["mean_difference_ci"],
        )
        assert f"{round(h['share_beating_all'] * 100)}% of the relations" in box.text
        inputs = heads["inputs"]
        assert (
            f"{inputs['used']} of {inputs['snippets']} snippets scored" in find("[data-testid=headrel-inputs]")[0].text
        )

        # The relation x layer map: each layer's best head at the first k, the chosen head's layer outlined.
        cells = find("[data-testid=headrel-map] td")
        rows = [r for r in block["relations"] if r.get("by_layer")]
        assert len(cells) == sum(len(r["by_layer"]) for r in rows)
        r0 = rows[0]
        shown = [c for c in cells if c.get_attribute("data-relation") == r0["relation"]]
        # Hover: each cell's value to 3 decimals (the cell itself shows 2).
        assert_shown(
            " ".join(c.get_attribute("title").split("\n")[0].rsplit(": ", 1)[1] for c in shown), r0["by_layer"]
        )
        assert [c.get_attribute("data-layer") for c in shown if "chosen" in c.get_attribute("class")] == [
            str(r0["k"][ks[0]]["layer"])
        ]

        # The table of the headline direction, sorted by the first k's test score.
        table = find(f"[data-testid='headrel-table-{h['direction']}']")[0]
        order = [tr.get_attribute("data-relation") for tr in table.find_elements("css selector", "tr")[1:]]
        key = lambda r: (r["k"][ks[0]]["test"]["mean"] is None, -(r["k"][ks[0]]["test"]["mean"] or 0))  # noqa: E731
        assert order == [r["relation"] for r in sorted(block["relations"], key=key)]
        for k in (ks[0], ks[1]):
            Select(find("[data-testid=headrel-k]")[0]).select_by_value(k)
            table = find(f"[data-testid='headrel-table-{h['direction']}']")[0]
            assert table.find_element("css selector", "th.cur").text.startswith(f"top-{k}")
            r = block["relations"][0]
            x = r["k"][k]
            best = x["best_baseline"]
            rules = x["rules"].get(best)
            name, edges, head, *tops, base, score, diff, beats = row_of(table, r["relation"])
            assert (name, edges, head) == (r["relation"], str(r["test_edges"]), f"{x['layer']}.{x['head']}")
            for text, kk in zip(tops, ks):
                assert_shown(text, [r["k"][kk]["test"]["mean"], *r["k"][kk]["test"]["ci"]])
            assert base == (f"{best} ({', '.join(rules)})" if rules else best)
            assert_shown(score, [x["baselines"][best]["mean"], *x["baselines"][best]["ci"]])
            d = x["difference"]
            assert_shown(diff, [d["mean"], *d["ci"]])
            assert diff.endswith(" n.d.") == (d["ci"][0] is not None and not d["distinguishable"])
            assert beats == ("yes" if x["beats_all"] else "no")
        # A click on a header sorts by that column.
        header = next(th for th in table.find_elements("css selector", "th") if th.text.startswith("relation"))
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", header)
        header.click()
        table = find(f"[data-testid='headrel-table-{h['direction']}']")[0]
        order = [tr.get_attribute("data-relation") for tr in table.find_elements("css selector", "tr")[1:]]
        assert order == sorted(r["relation"] for r in block["relations"])
        assert len(find("[data-testid^=headrel-table-]")) == sum(bool(b["relations"]) for b in heads["scores"])
        assert console_problems(driver) == []

        driver.get(plain.resolve().as_uri())
        wait_ready(driver)
        assert console_problems(driver) == []
        assert find("#curves") and not find("#head-relations") and not find("[data-testid^=headrel-]")
        assert "Attention-head relations" not in [a.text for a in find("nav a")]
