"""Issue 26, "hub revisions as a series": a model spec naming a repository's revisions
(`org/model@step1,step2,...`, or `{"repo": ..., "revisions": [...]}` in a config), as Pythia,
OLMo and LLM360 publish their checkpoints, resolves offline from the local Hugging Face cache
(the hub's own layout: refs/<revision> holding a commit, snapshots/<commit>/ of links into
blobs/) and is probed as a checkpoint series; a revision that repeats another's weights is a
duplicate, one without a step or missing from the cache is skipped with its reason."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from flow_configs import small_config
from tiny_checkpoints import tiny_training  # noqa: F401  (session fixture)

from codeprobe.errors import InputError, ModelLoadError
from codeprobe.model import load_model
from codeprobe.model.checkpoints import find_checkpoints, hub_revisions, is_checkpoint_series, revision_step
from codeprobe.pipeline.config import parse_config
from codeprobe.pipeline.experiment import run_experiment

REPO = "acme/tiny-mlm"
DATA = "python-python_small"


def commit_of(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def cache_revision(cache: Path, repo: str, revision: str, folder: Path, commit: str) -> Path:
    """Put `folder`'s files in the hub cache `cache` as `repo`'s `commit`, with `revision`
    (a branch) pointing at it, as `hf download --revision` leaves them: each file a blob named by
    its sha256, linked from the commit's snapshot. Returns the snapshot."""
    root = cache / ("models--" + repo.replace("/", "--"))
    snapshot = root / "snapshots" / commit
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "refs").mkdir(exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for f in sorted(p for p in folder.iterdir() if p.is_file()):
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        blob = root / "blobs" / digest
        if not blob.exists():
            blob.write_bytes(f.read_bytes())
        link = snapshot / f.name
        if not link.exists():
            os.symlink(f"../../blobs/{digest}", link)
    (root / "refs" / revision).write_text(commit)
    return snapshot


@pytest.fixture
def hub_cache(tiny_training, tmp_path, monkeypatch):  # noqa: F811
    """A Hugging Face cache holding REPO's branches step1 and step2 (the tiny series' first two
    checkpoints) and step3, a commit of its own that serves step2's files (Pythia's duplicate
    branches), and main; HF_HUB_CACHE points at it and the hub is off."""
    cache = tmp_path / "hf" / "hub"
    for revision, step in (("step1", 1), ("step2", 2), ("step3", 2), ("main", 2)):
        cache_revision(cache, REPO, revision, tiny_training / f"checkpoint-{step}", commit_of(revision))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_revision_steps_and_specs():
    assert revision_step("step1000") == 1000
    assert revision_step("stage1-step1000-tokens4B") == 1000  # OLMo's branch names
    assert revision_step("ckpt_042") == 42  # LLM360's
    assert revision_step("main") is None
    assert hub_revisions("EleutherAI/pythia-70m@step1000, step2000,step1000") == (
        "EleutherAI/pythia-70m",
        ("step1000", "step2000"),
    )
    assert hub_revisions("EleutherAI/pythia-70m") is None and hub_revisions("runs/mlm/checkpoint-*") is None
    assert is_checkpoint_series("EleutherAI/pythia-70m@step1000")
    cfg = parse_config({"models": [{"repo": REPO, "revisions": ["step1", "step2"]}, "default"]})
    assert cfg.models == (f"{REPO}@step1,step2", "default")


def test_revisions_resolve_offline_from_the_cache(hub_cache):
    series = find_checkpoints(f"{REPO}@step2,step1,main,step9")
    assert [(c.step, c.name, c.path.name) for c in series.checkpoints] == [
        (1, f"{REPO}@step1", commit_of("step1")),
        (2, f"{REPO}@step2", commit_of("step2")),
    ]
    assert series.skipped == (
        (f"{REPO}@main", "no step in its name"),
        (f"{REPO}@step9", "not in the local Hugging Face cache"),
    )
    assert series.name == REPO
    info = load_model(f"{REPO}@step2", device="cpu").info
    assert info.source == "hub-cache" and info.revision == commit_of("step2") and info.name == f"{REPO}@step2"
    with pytest.raises(ModelLoadError, match="revision 'step9' of 'acme/tiny-mlm' is not in the local"):
        load_model(f"{REPO}@step9", device="cpu")
    with pytest.raises(InputError, match="no revision of 'acme/tiny-mlm'"):
        find_checkpoints(f"{REPO}@main,step9")


def test_a_hub_cache_series_is_probed_offline(hub_cache, python_jsonl, tmp_path):
    config = small_config(REPO, python_jsonl, astprobe=False, heads=None)
    config["models"] = [{"repo": REPO, "revisions": ["step1", "step2", "step3", "main", "step9"]}]
    run = tmp_path / "run"
    report = run_experiment(parse_config(config), run)

    summary = json.loads((run / "summary.json").read_text())
    results = summary["results"]
    spec = f"{REPO}@step1,step2,step3,main,step9"
    assert [(r["model"], r["step"]) for r in results] == [(spec, 1), (spec, 2)]
    assert [r["checkpoint"] for r in results] == [f"{REPO}@step1", f"{REPO}@step2"]
    assert [r["model_info"]["revision"] for r in results] == [commit_of("step1"), commit_of("step2")]
    assert all(r["model_info"]["source"] == "hub-cache" for r in results)
    for step in (1, 2):
        assert (run / "cat" / "tiny-mlm" / f"step-{step}" / DATA / "summary.json").is_file()
    assert not (run / "cat" / "tiny-mlm" / "step-3").exists()  # step3 serves step2's weights
    record = summary["series"][0]
    assert record["name"] == REPO and record["found"] == 5 and record["probed"] == [1, 2]
    assert record["duplicates"] == {"3": 2}
    assert record["skipped_by_reason"] == {"no step in its name": 1, "not in the local Hugging Face cache": 1}
    text = report.read_text()
    assert f"### {REPO}, python," in text
    assert f"- Series {REPO}: 5 checkpoints found, 2 probed, 1 duplicate, 2 skipped" in text
    assert "step 3 = step 2." in text
    assert f"- Series {REPO}, skipped {REPO}@step9: not in the local Hugging Face cache." in text
