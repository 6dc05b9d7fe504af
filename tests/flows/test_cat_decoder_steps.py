"""A run's CAT-probing steps on a decoder: scored under the causal convention unless the config
names another (`cat.mask`), the same rows as the library, and the summary section and report
say which convention the numbers use (issue 25)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from cat.cat_models import tiny_gpt2_dir

from codeprobe.files import read_json
from codeprobe.pipeline import data
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.methods.cat import steps as cat
from codeprobe.pipeline.methods.cat.report import report
from codeprobe.pipeline.methods.cat.summary import summarize
from codeprobe.pipeline.runfolder import ResultFolder
from codeprobe.pipeline.steps import loaded_model


def test_the_mask_is_resolved_by_the_models_kind():
    for kind, mask in (("decoder", "causal"), ("encoder", "full"), ("encoder (of encoder-decoder)", "full")):
        assert cat.step_settings(RunConfig(), "python", kind=kind)["cat"]["mask"] == mask
    named = RunConfig(cat={"mask": "full"})
    assert cat.step_settings(named, "python", kind="decoder")["cat"]["mask"] == "full"


@pytest.mark.parametrize("mask", ["auto", "full"])
def test_decoder_steps_score_like_the_library_and_report_the_convention(mask, tmp_path):
    cfg = RunConfig(batch_size=4, cat={"mask": mask, "per_head": False})
    settings = cat.step_settings(cfg, "python", kind="decoder")
    data_dir = data.prepare_data("stdlib", "python", 12, 0, str(tmp_path / "data"), key="decoder")
    model, out = str(tiny_gpt2_dir()), tmp_path / "cat"
    paths = [
        cat.cat_shard(model, "python", data_dir, k, 6, settings, str(out / f"shard-{k:04d}.npz"), f"k{k}")
        for k in range(2)
    ]
    cat.cat_reduce(model, "python", paths, settings, str(out), "r")

    want = "causal" if mask == "auto" else "full"
    assert read_json(out / "summary.json")["settings"]["mask"] == want
    result = cat.cat_probe(settings).score(data.read_snippets(data_dir), loaded_model(model, None), language="python")
    assert result.settings["mask"] == want
    got = pq.read_table(out / "samples.parquet").to_pydict()
    for name in ("score", "random_baseline", "positional_baseline"):
        np.testing.assert_array_equal(np.asarray(got[name]), result.samples.columns()[name], err_msg=name)

    section = summarize(ResultFolder(out), cfg)
    assert section["mask"] == want
    text = "\n".join(report([("tiny-gpt2", section)], tmp_path / "plots"))
    assert f"mask `{want}`" in text
    assert ("key at or before the query" in text) == (want == "causal")
