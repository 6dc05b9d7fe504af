"""The model fingerprint: every file a model is loaded from (all weight shards and their index,
config, tokenizer), by content; memoised by file identity and times, never past a change."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
import torch
from sharded_model import TOKENIZER, sharded_bert

from codeprobe.errors import ModelLoadError
from codeprobe.model import default_model_dir, load_model, model_fingerprint, shared_model
from codeprobe.model import fingerprint as fp


@pytest.fixture
def memo(tmp_path, monkeypatch):
    """A fresh, private memo (in process and on disk)."""
    monkeypatch.setenv("CODEPROBE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(fp, "_memo", {})
    monkeypatch.setattr(fp, "_memo_loaded", False)
    return tmp_path / "cache" / "file-sha256.json"


def age(*paths: Path, seconds: float = 60) -> None:
    """Date files back (past the window in which a fresh file is not memoised)."""
    then = time.time_ns() - int(seconds * 1e9)
    for path in paths:
        os.utime(path, ns=(then, then))


def test_a_sharded_model_is_fingerprinted_over_every_file_it_loads(tmp_path, memo):
    folder = sharded_bert(tmp_path / "model")
    shards = sorted(p.name for p in folder.glob("model-*-of-*.safetensors"))
    assert len(shards) >= 2
    (folder / "README.md").write_text("a model card")
    (folder / "trainer_state.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"weights in a format that is not loaded")
    (folder / "sub").mkdir()
    (folder / "sub" / "config.json").write_text("{}")
    assert [p.name for p in fp.model_files(folder)] == sorted(
        [*shards, "model.safetensors.index.json", "config.json", *TOKENIZER]
    )

    info = load_model(str(folder), device="cpu").info
    assert info.weights_file == ", ".join(shards)
    expected = hashlib.sha256(fp.FORMAT.encode() + b"\0")
    for path in fp.model_files(folder):
        data = path.read_bytes()
        expected.update(f"{path.name}\0{len(data)}\0{hashlib.sha256(data).hexdigest()}\0".encode())
    assert info.fingerprint == expected.hexdigest() == model_fingerprint(str(folder))

    # Files that are not loaded change nothing; any loaded one changes it.
    (folder / "README.md").write_text("another model card")
    (folder / "pytorch_model.bin").write_bytes(b"other")
    assert model_fingerprint(str(folder)) == info.fingerprint
    shard = folder / shards[-1]
    data = bytearray(shard.read_bytes())
    data[-1] ^= 1
    shard.write_bytes(bytes(data))
    assert model_fingerprint(str(folder)) != info.fingerprint
    (folder / shards[0]).unlink()
    with pytest.raises(ModelLoadError, match="shards missing"):
        model_fingerprint(str(folder))


@pytest.mark.parametrize(
    "change", ["tokenizer.json", "vocab.txt", "tokenizer_config.json", "config.json", "model.safetensors.index.json"]
)
def test_a_changed_tokenizer_or_config_changes_the_fingerprint(tmp_path, memo, change):
    folder = sharded_bert(tmp_path / "model")
    before = model_fingerprint(str(folder))
    path = folder / change
    if change == "vocab.txt":
        path.write_text(path.read_text(encoding="utf-8") + "[NEW]\n", encoding="utf-8")
    else:
        content = json.loads(path.read_text(encoding="utf-8"))
        content["codeprobe_test"] = 1  # e.g. a retrained tokenizer's different settings
        path.write_text(json.dumps(content), encoding="utf-8")
    assert model_fingerprint(str(folder)) != before


def test_file_hashes_are_memoised_by_identity_and_times(tmp_path, memo):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"a" * 1000)
    age(path)
    digest = hashlib.sha256(b"a" * 1000).hexdigest()
    assert fp.file_sha256(path) == digest
    assert digest in json.loads(memo.read_text()).values()

    # A memo hit reads nothing: a forged memo entry for this file's identity is believed ...
    (key,) = [k for k, v in fp._memo.items() if v == digest]
    fp._memo[key] = "f" * 64
    assert fp.file_sha256(path) == "f" * 64
    # ... and a new process reads the on-disk memo.
    fp._memo.clear()
    fp._memo_loaded = False
    assert fp.file_sha256(path) == digest

    # Rewritten in place with the same size and its old mtime put back: its ctime still tells.
    stat = path.stat()
    path.write_bytes(b"b" * 1000)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert fp.file_sha256(path) == hashlib.sha256(b"b" * 1000).hexdigest()


def test_a_file_changed_just_now_is_hashed_but_not_memoised(tmp_path, memo):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"fresh")
    assert fp.file_sha256(path) == hashlib.sha256(b"fresh").hexdigest()
    assert fp._memo == {} and not memo.exists()


def test_an_unwritable_memo_folder_keeps_the_memo_in_process(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("CODEPROBE_CACHE_DIR", str(blocker))
    monkeypatch.setattr(fp, "_memo", {})
    monkeypatch.setattr(fp, "_memo_loaded", False)
    path = tmp_path / "w.bin"
    path.write_bytes(b"x")
    age(path)
    assert fp.file_sha256(path) == hashlib.sha256(b"x").hexdigest() and len(fp._memo) == 1


def test_the_packaged_model_is_fingerprinted_over_its_files(memo):
    folder = default_model_dir()
    assert [p.name for p in fp.model_files(folder)] == [
        "config.json",
        "model.safetensors",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    assert model_fingerprint() == fp.folder_fingerprint(folder)


def test_shared_model_is_loaded_again_when_its_files_change(tmp_path, memo):
    folder = sharded_bert(tmp_path / "model")
    first = shared_model(str(folder), device="cpu")
    assert shared_model(str(folder), device="cpu") is first
    sharded_bert(folder, seed=1)  # new weights under the same file names
    second = shared_model(str(folder), device="cpu")
    assert second is not first and second.info.fingerprint != first.info.fingerprint
    emb = "embeddings.word_embeddings.weight"
    assert not torch.equal(first.model.state_dict()[emb], second.model.state_dict()[emb])
