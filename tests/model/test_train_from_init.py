"""examples/train_code_mlm.py --init: continued masked-language-model training of a pretrained
encoder (here the packaged all-MiniLM-L6-v2, a few steps on a few files), CodeBERT's recipe at
toy scale: step 0 is the initial encoder itself, the held-out loss is measured at every saved
step, and the files used are listed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tiny_checkpoints import example, train_tiny

from codeprobe.errors import InputError
from codeprobe.model.checkpoints import find_checkpoints
from codeprobe.model.source import default_model_dir

INIT = dict(
    init="packaged",
    max_files=8,
    max_length=64,
    batch_size=2,
    max_steps=2,
    save_steps=(2,),
    lr=1e-4,
    eval_fraction=0.25,
    eval_blocks=4,
)


@pytest.fixture(scope="module")
def continued(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("minilm-code") / "out", **INIT)


def test_step_0_is_the_initial_encoder(continued):
    assert [c.step for c in find_checkpoints(str(continued)).checkpoints] == [0, 2]
    init = load_file(default_model_dir() / "model.safetensors")
    step0 = load_file(continued / "checkpoint-0" / "model.safetensors")
    step2 = load_file(continued / "checkpoint-2" / "model.safetensors")
    name = "encoder.layer.0.attention.self.query.weight"
    key = next(k for k in step0 if k.endswith(name))
    assert torch.equal(step0[key], init[next(k for k in init if k.endswith(name))])
    assert not torch.equal(step0[key], step2[key])  # training moved the encoder
    assert any(k.startswith("cls.predictions") for k in step0)  # the MLM head it was given


def test_heldout_loss_and_files_are_recorded(continued):
    record = json.loads((continued / "train_settings.json").read_text())
    assert record["checkpoints"] == [0, 2]
    assert [e["step"] for e in record["heldout_loss"]] == [0, 2]
    assert all(np.isfinite(e["python"]) and e["python"] > 0 for e in record["heldout_loss"])
    rows = (continued / "train_files.tsv").read_text().splitlines()
    splits = [row.split("\t")[0] for row in rows[1:]]
    assert rows[0].startswith("split\tsource") and len(rows) == 1 + 8
    assert splits.count("heldout") == 2 and splits.count("train") == 6  # a quarter of 8 files


def test_masked_positions_loss_equals_the_full_head():
    """The head on the masked positions only gives the loss of the full model's MLM output."""
    mod = example()
    _, model = mod.load_pretrained(default_model_dir())
    model.eval()
    torch.manual_seed(0)
    ids = torch.randint(1000, 2000, (2, 16))
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 7], labels[1, 9] = 1500, 1600, 1700
    with torch.no_grad():
        full = model(input_ids=ids, labels=labels).loss
        ours = mod.masked_lm_loss(model, ids, labels)
    assert torch.allclose(full, ours, atol=1e-5)


def test_a_missing_init_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no config.json"):
        train_tiny(tmp_path / "out", **{**INIT, "init": str(tmp_path / "nowhere")})
