"""Decoders as first-class models (issue 25): tiny architecture-exact random-weight Llama,
Qwen2, Starcoder2, GPT-NeoX, Gemma and GPT-2 models with byte-level BPE tokenizers
(tests/decoder_models.py) load as decoders with their own framing, give the same numbers in any
batch and close ones in bfloat16, keep no key-value cache, get a random-weights twin with their
pretrained embeddings, give token vectors that see only their left context, take inputs no
longer than a sliding window, and run `codeprobe cat` (causal by default, equal to the loop
oracle on the model's own attention) and `codeprobe astprobe train` (finite F1)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from decoder_models import FAMILIES, build, decoder_models  # noqa: F401  (session fixture)
from oracles import cat as cat_oracle
from shared_data import cosqa_functions
from tiny_models import tiny_loaded

from codeprobe.cli import main
from codeprobe.model import load_model, random_weights
from codeprobe.model.extraction import Extractor
from codeprobe.model.model_io import ModelInput
from codeprobe.model.random_weights import embedding_modules
from codeprobe.probes.cat import PAPER_TYPES, CATProbe
from codeprobe.syntax import parse

EACH = pytest.mark.parametrize("family", list(FAMILIES))

BASE_CLASSES = {
    "llama": "LlamaModel",
    "qwen2": "Qwen2Model",
    "starcoder2": "Starcoder2Model",
    "gpt_neox": "GPTNeoXModel",
    "gemma": "GemmaModel",
    "gpt2": "GPT2Model",
}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one torch thread (spinning OpenMP threads only slow them on busy cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def loaded(models, family):
    return load_model(str(models.dir(family)), device="cpu")


@EACH
def test_loads_as_a_decoder_framed_like_its_family(decoder_models, family):  # noqa: F811
    lm = loaded(decoder_models, family)
    info = lm.info
    assert info.kind == "decoder" and info.architecture == BASE_CLASSES[family]
    assert (info.n_layers, info.n_heads, info.max_subwords) == (2, 4, 256)
    bos = (lm.tokenizer.bos_token_id,) if FAMILIES[family].adds_bos else ()
    assert lm.prefix_ids == bos and lm.suffix_ids == ()
    # A pass returns no key-value cache: it would hold every layer's keys and values to its end.
    ids = torch.tensor([lm.tokenizer("def f(x): return x", add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        out = lm.model(input_ids=ids, attention_mask=torch.ones_like(ids), return_dict=True)
    assert out.get("past_key_values") is None


@EACH
def test_batches_and_padding_change_nothing(decoder_models, family):  # noqa: F811
    lm = loaded(decoder_models, family)
    snippets = cosqa_functions()[:5]
    probe = CATProbe(types="all")
    one, four = (
        [x.sample for x in probe.inputs(snippets, Extractor(lm, batch_size=b, hidden_states=False), "python")]
        for b in (1, 4)
    )
    for a, b in zip(one, four, strict=True):
        np.testing.assert_allclose(a.attention, b.attention, atol=1e-5)


@EACH
def test_random_weights_twin_keeps_the_pretrained_embeddings(decoder_models, family):  # noqa: F811
    lm = loaded(decoder_models, family)
    twin = random_weights(lm, seed=1)
    kept = embedding_modules(lm.model)
    # GPT-2 learns its positions beside its token embeddings; the rotary families learn none.
    assert len(kept) == (2 if family == "gpt2" else 1)
    ours, theirs = lm.model.state_dict(), twin.model.state_dict()
    for key, value in ours.items():
        same = torch.equal(value, theirs[key])
        if any(key.startswith(f"{name}.") for name in kept):
            assert same, key
        elif key.endswith("weight") and value.dim() == 2:
            assert not same, key  # every projection drawn afresh


def token_vectors(lm, codes: list[str]) -> list[np.ndarray]:
    """Every hidden state of each code's tokens, (L + 1, n, hidden)."""
    inputs = [ModelInput.from_tokens(str(k), c, parse(c, "python").tokens()) for k, c in enumerate(codes)]
    return [r.hidden_states for r in Extractor(lm, attention=False, batch_size=2).extract(inputs)]


@pytest.mark.parametrize("family", [*FAMILIES, "codebert"])
def test_a_token_vector_sees_only_its_left_context(decoder_models, family):  # noqa: F811
    """What the AST-Probe and structural-probe docs say of decoders: code added after a token
    leaves its vector at every hidden state unchanged; an encoder's vectors change."""
    lm = tiny_loaded("codebert") if family == "codebert" else loaded(decoder_models, family)
    code = cosqa_functions()[1][1].rstrip("\n")
    alone, extended = token_vectors(lm, [code, code + "\n\n\ndef more(y):\n    return [y, y]\n"])
    n = alone.shape[1]
    assert extended.shape[1] > n
    same = np.allclose(alone, extended[:, :n], atol=1e-5)
    assert same == (family != "codebert")
    np.testing.assert_array_equal(alone[0], extended[0, :n])  # the embeddings see no context


def snippet_file(tmp_path):
    ident, code = cosqa_functions()[1]
    path = tmp_path / "snippet.py"
    path.write_text(code, encoding="utf-8")
    return path, code


@EACH
def test_cat_cli_is_causal_and_equals_the_oracle(decoder_models, family, tmp_path):  # noqa: F811
    model = decoder_models.dir(family)
    path, code = snippet_file(tmp_path)
    result = CliRunner().invoke(main, ["cat", str(path), "--model", str(model), "--json"])
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert obj["settings"]["mask"] == "causal" and obj["settings"]["types"] == "paper"
    layers = obj["layers"]
    assert [row["layer"] for row in layers] == [0, 1]
    want = cat_oracle.model_scores(
        loaded(decoder_models, family), [("x", code)], [set(PAPER_TYPES["python"])] * 2, causal=True
    )
    for row in layers:
        for name in ("score", "random_baseline", "positional_baseline"):
            assert math.isfinite(row[name]) and 0 <= row[name] <= 1, (name, row)
        assert row["score"] == pytest.approx(want[("x", row["layer"])], abs=1e-6)


@EACH
def test_astprobe_train_gives_finite_f1(decoder_models, family, tmp_path):  # noqa: F811
    data = tmp_path / "functions.jsonl"
    data.write_text("".join(json.dumps({"id": i, "code": c}) + "\n" for i, c in cosqa_functions()[:40]))
    out = tmp_path / "run"
    args = ["astprobe", "train", "--dataset", str(data), "--lang", "python", "--model"]
    args += [str(decoder_models.dir(family)), "--rank", "8", "--epochs", "2", "--out", str(out)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (res,) = json.loads((out / "summary.json").read_text())["results"]
    summary = res["astprobe"]
    assert [row["hidden_state"] for row in summary["hidden_states"]] == [0, 1, 2]
    rows = summary["hidden_states"] + summary["baselines"]["random"]
    assert len(rows) == 6 and all(math.isfinite(row["f1"]) and 0 <= row["f1"] <= 1 for row in rows)


@pytest.mark.parametrize(
    "family,settings,limit",
    [
        ("starcoder2", {"sliding_window": 64}, 64),
        ("qwen2", {"use_sliding_window": True, "sliding_window": 64, "max_window_layers": 1}, 64),
        ("qwen2", {"sliding_window": 64}, 256),  # the window is off (use_sliding_window false)
    ],
)
def test_a_sliding_window_limits_the_input(family, settings, limit, tmp_path):
    """A query in a sliding-window layer sees only the last `window` keys: inputs are cut at the
    window, so the causal convention's pairs are all pairs the model can attend to."""
    lm = load_model(str(build(family, tmp_path / family, **settings)), device="cpu")
    assert lm.info.max_subwords == limit
    ident, code = next((i, c) for i, c in cosqa_functions() if 100 < len(lm.tokenizer(c)["input_ids"]) < 200)
    (x,) = CATProbe(types="paper").inputs([(ident, code)], lm, "python")
    n_tokens = len(parse(code, "python").tokens())
    assert (x.status, len(x.sample.types) < n_tokens) == (("truncated", True) if limit == 64 else ("ok", False))
    result = CATProbe(types="paper").score([(ident, code)], lm, "python")
    want = cat_oracle.model_scores(lm, [(ident, code)], [set(PAPER_TYPES["python"])] * 2, True, limit)
    for layer in range(2):
        assert result.samples.score[layer] == pytest.approx(want[(ident, layer)], abs=1e-6)


@EACH
def test_bfloat16_scores_are_close_to_float32(decoder_models, family):  # noqa: F811
    """Half precision, as a large decoder runs: the same CAT-scores up to bfloat16 rounding
    (the attention row check passes at its half-precision tolerance)."""
    path = str(decoder_models.dir(family))
    snippets = cosqa_functions()[:4]
    full, half = (
        CATProbe(types="all").score(snippets, load_model(path, device="cpu", dtype=dtype), "python").samples.score
        for dtype in ("float32", "bfloat16")
    )
    assert np.isfinite(half).all() and np.abs(half - full).max() < 0.05
