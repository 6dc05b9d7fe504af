"""Checkpoint series: the training example's checkpoints load offline by themselves; discovery
finds finished checkpoints by step (Trainer folders and globs), skips ones still being written,
and refuses what it cannot order; model fingerprints follow the weights."""

from __future__ import annotations

import json
import shutil

import pytest
from tiny_checkpoints import example, series_copy, tiny_training, train_tiny  # noqa: F401  (fixture)

from codeprobe.errors import InputError, ModelLoadError
from codeprobe.model import load_model
from codeprobe.model.checkpoints import find_checkpoints, is_checkpoint_series, series_name
from codeprobe.model.fingerprint import folder_fingerprint


def test_training_example_saves_self_contained_safetensors_checkpoints(tiny_training):  # noqa: F811
    record = json.loads((tiny_training / "train_settings.json").read_text())
    assert record["checkpoints"] == [1, 2, 3] and record["tokens"] > 10_000
    assert [e["step"] for e in record["log"]] == [1, 2, 3]
    for step in (1, 2, 3):
        folder = tiny_training / f"checkpoint-{step}"
        assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.bin.index*"))
        assert (folder / "tokenizer.json").is_file() and (folder / "trainer_state.json").is_file()
        assert not (folder / "optimizer.pt").exists()  # weights only: small checkpoints
        assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))  # no pickle at all
    loaded = load_model(str(tiny_training / "checkpoint-3"), device="cpu")
    assert loaded.info.architecture == "RobertaModel" and loaded.info.n_layers == 2
    assert loaded.info.max_subwords == 256 and loaded.info.input_template == "<s> {code} </s>"
    assert loaded.info.missing_weights == ("pooler.dense.bias", "pooler.dense.weight")
    enc = loaded.tokenizer("def f(x):\n    return x", return_offsets_mapping=True)
    assert enc["offset_mapping"][1] == (0, enc["offset_mapping"][1][1])  # offsets into the text


def test_training_is_seeded(tiny_training, tmp_path):  # noqa: F811
    again = train_tiny(tmp_path / "again", save_steps=(2,))
    assert folder_fingerprint(again / "checkpoint-2") == folder_fingerprint(tiny_training / "checkpoint-2")
    other = train_tiny(tmp_path / "other", save_steps=(2,), seed=1)
    assert folder_fingerprint(other / "checkpoint-2") != folder_fingerprint(again / "checkpoint-2")
    with pytest.raises(InputError, match="already holds checkpoints"):
        train_tiny(tmp_path / "again")


def test_default_checkpoints_are_log_spaced():
    settings = example().TrainSettings
    assert settings(max_steps=3000).checkpoint_steps() == (10, 20, 50, 100, 200, 500, 1000, 2000, 3000)
    assert settings(max_steps=50).checkpoint_steps() == (10, 20, 50)
    assert settings(max_steps=7, save_steps=(9, 3, 0, 3)).checkpoint_steps() == (3,)


def test_trainer_folder_is_a_series_ordered_by_step(tiny_training, tmp_path):  # noqa: F811
    assert is_checkpoint_series(str(tiny_training))  # has checkpoint-<N>, no weights of its own
    assert not is_checkpoint_series(str(tiny_training / "checkpoint-1"))
    series = find_checkpoints(str(tiny_training))
    assert [c.step for c in series.checkpoints] == [1, 2, 3] and series.skipped == ()
    assert series.name == "out" == series_name(str(tiny_training))

    # Steps come from trainer_state.json, not from the name; numbers order as numbers.
    folder = series_copy(tiny_training, tmp_path / "run", steps=(1, 2))
    (folder / "checkpoint-2").rename(folder / "checkpoint-10")
    state = folder / "checkpoint-10" / "trainer_state.json"
    state.write_text(json.dumps({**json.loads(state.read_text()), "global_step": 10}))
    assert [c.step for c in find_checkpoints(str(folder)).checkpoints] == [1, 10]


def test_a_checkpoint_still_being_written_is_skipped(tiny_training, tmp_path):  # noqa: F811
    folder = series_copy(tiny_training, tmp_path / "run", steps=(1, 2))
    (folder / "checkpoint-2" / "trainer_state.json").unlink()  # Trainer writes it last
    (folder / "checkpoint-7").mkdir()  # just created, empty
    series = find_checkpoints(str(folder))
    assert [c.step for c in series.checkpoints] == [1]
    assert sorted(series.skipped) == [
        (str(folder / "checkpoint-2"), "incomplete"),
        (str(folder / "checkpoint-7"), "no model"),
    ]


def test_a_glob_names_checkpoints_steps_from_their_names(tiny_training, tmp_path):  # noqa: F811
    root = tmp_path / "ckpts"
    for step in (3, 1):
        shutil.copytree(tiny_training / f"checkpoint-{step}", root / f"step_{step:04d}")
        (root / f"step_{step:04d}" / "trainer_state.json").unlink()  # not a Trainer folder
    (root / "step_0005").mkdir()  # no config.json
    (root / "notes.txt").write_text("not a folder")
    spec = str(root / "step_*")
    assert is_checkpoint_series(spec)
    series = find_checkpoints(spec)
    assert [(c.step, c.path.name) for c in series.checkpoints] == [(1, "step_0001"), (3, "step_0003")]
    assert series.skipped == ((str(root / "step_0005"), "no model"),) and series.name == "ckpts"
    # A folder without weights, or without a tokenizer, is not finished.
    (root / "step_0003" / "model.safetensors").unlink()
    (root / "step_0001" / "tokenizer.json").unlink()
    (root / "step_0001" / "tokenizer_config.json").unlink()
    with pytest.raises(InputError, match="no finished checkpoint"):
        find_checkpoints(spec)


def test_series_that_cannot_be_read_fail_clearly(tiny_training, tmp_path):  # noqa: F811
    with pytest.raises(ModelLoadError, match="matches no folder"):
        find_checkpoints(str(tmp_path / "nothing-*"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        find_checkpoints(str(tmp_path / "missing"))
    twice = tmp_path / "twice"
    shutil.copytree(tiny_training / "checkpoint-1", twice / "a-1")
    shutil.copytree(tiny_training / "checkpoint-2", twice / "b-2")
    (twice / "b-2" / "trainer_state.json").write_text(json.dumps({"global_step": 1}))
    with pytest.raises(InputError, match="several checkpoints at step 1"):
        find_checkpoints(str(twice / "*"))
    nameless = tmp_path / "nameless"
    shutil.copytree(tiny_training / "checkpoint-1", nameless / "final")
    (nameless / "final" / "trainer_state.json").unlink()
    with pytest.raises(InputError, match="cannot tell the training step"):
        find_checkpoints(str(nameless / "*"))


def test_fingerprint_follows_the_weights(tiny_training, tmp_path):  # noqa: F811
    one, two = tiny_training / "checkpoint-1", tiny_training / "checkpoint-2"
    assert folder_fingerprint(one) != folder_fingerprint(two)
    copy = shutil.copytree(one, tmp_path / "copy")
    assert folder_fingerprint(copy) == folder_fingerprint(one)
    shutil.copy(two / "model.safetensors", copy / "model.safetensors")  # replaced in place
    assert folder_fingerprint(copy) == folder_fingerprint(two)
    with pytest.raises(ModelLoadError, match="no weights"):
        folder_fingerprint(tmp_path)
