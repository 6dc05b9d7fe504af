"""Extraction against the batch-1 loop oracle on tiny random-weight models of every supported
family (RoBERTa/CodeBERT, T5/CodeT5 encoder, GPT-2, Llama) and on the real default model."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch
from model_oracle import CODE_WITH_TRAPS, oracle_extract
from shared_data import cosqa_functions
from tiny_models import tiny_loaded

from codeprobe.errors import AlignmentError, InputError, ModelLoadError
from codeprobe.model import Extractor, ModelInput, load_model
from codeprobe.syntax import parse

ATOL = 1e-5


def snippet(i, code):
    return ModelInput.from_tokens(i, code, parse(code, "python").tokens())


@cache
def sample(n: int = 6) -> tuple[ModelInput, ...]:
    """The trap snippet plus real functions of varied length (so batches need padding)."""
    codes = sorted((code for _, code in cosqa_functions()[:60]), key=len)
    picks = [codes[0], codes[len(codes) // 3], codes[-8], codes[len(codes) // 2], codes[5]][: n - 1]
    return tuple(snippet(i, c) for i, c in enumerate([CODE_WITH_TRAPS, *picks]))


@cache
def default_model():
    return load_model(device="cpu")


def check_against_oracle(loaded, snippets, results, **oracle_kw):
    assert [r.id for r in results] == [s.id for s in snippets]
    for s, r in zip(snippets, results):
        o = oracle_extract(loaded, s.code, s.token_starts, s.token_ends, **oracle_kw)
        assert r.tokens.tolist() == o.tokens
        assert r.status == ("truncated" if o.truncated else "ok")
        assert r.attention.dtype == np.float32 and r.hidden_states.dtype == np.float32
        np.testing.assert_allclose(r.attention, o.attention, rtol=0, atol=ATOL)
        np.testing.assert_allclose(r.hidden_states, o.hidden_states, rtol=0, atol=ATOL)


POOLINGS = ["kernels", "sparse"]  # compiled CPU loops, and torch sparse products (GPUs)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("kind", ["codebert", "codet5", "gpt2", "llama"])
def test_matches_oracle_with_padding(kind, pooling):
    loaded = tiny_loaded(kind)
    results = list(Extractor(loaded, batch_size=4, pooling=pooling).extract(sample()))
    info = loaded.info
    k = len(results[1].tokens)
    assert results[1].attention.shape == (info.n_layers, k, k)
    assert results[1].hidden_states.shape == (info.n_layers + 1, k, info.hidden_size)
    check_against_oracle(loaded, sample(), results)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("kind", ["codebert", "gpt2"])
def test_per_head_matches_oracle_and_mean(kind, pooling):
    loaded = tiny_loaded(kind)
    heads = list(Extractor(loaded, batch_size=3, heads="all", pooling=pooling).extract(sample(4)))
    mean = list(Extractor(loaded, batch_size=3, pooling=pooling).extract(sample(4)))
    for h, m in zip(heads, mean):
        assert h.attention.shape[:2] == (loaded.info.n_layers, loaded.info.n_heads)
        np.testing.assert_allclose(h.attention.mean(1), m.attention, atol=ATOL)
    check_against_oracle(loaded, sample(4), heads, per_head=True)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("kind", ["codebert", "codet5"])
def test_head_max_matches_oracle(kind, pooling):
    """CAT-probing's reference `action_per_head="max"`: the maximum over heads of the subword
    attention, then the block mean (not the maximum of the heads' block means)."""
    loaded = tiny_loaded(kind)
    got = list(Extractor(loaded, batch_size=3, heads="max", pooling=pooling).extract(sample(4)))
    check_against_oracle(loaded, sample(4), got, head_max=True)
    per_head = list(Extractor(loaded, batch_size=3, heads="all").extract(sample(4)))
    for g, h in zip(got, per_head):
        assert g.attention.shape == h.attention.mean(1).shape
        # The block mean of a maximum is at least the maximum of the block means.
        assert (g.attention >= h.attention.max(1) - ATOL).all()
        assert (g.attention > h.attention.max(1) + ATOL).any()


@pytest.mark.parametrize("pooling", POOLINGS)
def test_head_max_rows_are_checked(pooling):
    loaded = load_model(str(tiny_loaded("codebert").info.path), device="cpu")
    attn = [m for m in loaded.model.modules() if type(m).__name__ == "RobertaSelfAttention"]
    for m in attn:  # a third of the weights: even the maximum over heads sums below 1
        m.register_forward_hook(lambda mod, args, out: (out[0], out[1] / 3))
    with pytest.raises(ModelLoadError, match="sum to 1"):
        list(Extractor(loaded, heads="max", pooling=pooling).extract(sample(1)))


def test_joined_tokens_spans():
    texts = ["def", "f", "(", '"a  \n b"', "", " ", ")"]
    s = ModelInput.joined(0, texts)
    assert s.code == 'def f ( "a  \n b"   )'
    assert [s.code[a:b] for a, b in zip(s.token_starts, s.token_ends)] == texts
    c = ModelInput.joined(0, texts, collapse_whitespace=True)
    # CAT-probing's reference: " ".join(" ".join(tokens).split())
    assert c.code == " ".join(" ".join(texts).split()) == 'def f ( "a b" )'
    assert [c.code[a:b] for a, b in zip(c.token_starts, c.token_ends)] == ["def", "f", "(", '"a b"', "", "", ")"]
    assert c.token_starts[4] == c.token_ends[3]  # empty tokens sit where no subword can reach
    r = next(Extractor(tiny_loaded("codebert")).extract([c]))
    assert r.tokens.tolist() == [0, 1, 2, 3, 6]


@pytest.mark.parametrize("kind", ["codebert", "llama"])
def test_batch_size_does_not_change_results(kind):
    ex1 = Extractor(tiny_loaded(kind), batch_size=1)
    ex5 = Extractor(tiny_loaded(kind), batch_size=5)
    for a, b in zip(ex1.extract(sample()), ex5.extract(sample())):
        np.testing.assert_allclose(a.attention, b.attention, atol=ATOL)
        np.testing.assert_allclose(a.hidden_states, b.hidden_states, atol=ATOL)


def test_truncation_cuts_at_a_token_boundary():
    loaded = tiny_loaded("codebert")
    results = list(Extractor(loaded, batch_size=3, max_subwords=64).extract(sample()))
    assert {r.status for r in results} == {"ok", "truncated"}
    full = {r.id: r for r in Extractor(loaded, batch_size=3).extract(sample())}
    for r in results:
        assert r.n_subwords_used + 2 <= 64
        f = full[r.id]
        # kept tokens are a prefix of the untruncated ones; the counts add up
        assert r.tokens.tolist() == f.tokens.tolist()[: len(r.tokens)]
        assert r.n_tokens_truncated == len(f.tokens) - len(r.tokens)
        assert (r.n_subwords, r.n_shared_subwords) == (f.n_subwords, f.n_shared_subwords)
        assert (r.status == "truncated") == (r.n_subwords_used < r.n_subwords)
    check_against_oracle(loaded, sample(), results, max_subwords=64)


def test_skip_policy_keeps_order_and_marks_skipped():
    loaded = tiny_loaded("gpt2")
    results = list(Extractor(loaded, batch_size=2, max_subwords=60, length_policy="skip").extract(sample()))
    assert [r.id for r in results] == [s.id for s in sample()]
    skipped = [r for r in results if r.status == "skipped"]
    assert skipped and len(skipped) < len(results)
    for r in skipped:
        assert r.attention is None and r.hidden_states is None and r.n_subwords > 58
        assert r.n_subwords_used == 0 and r.n_tokens_truncated == 0
    check_against_oracle(
        loaded, [s for s, r in zip(sample(), results) if r.status == "ok"], [r for r in results if r.status == "ok"]
    )


def test_unixcoder_mode_prefix_and_positions():
    loaded = tiny_loaded("unixcoder")
    assert loaded.info.max_subwords == 1024
    assert loaded.info.input_template == "<s> <encoder-only> </s> {code} </s>"
    results = list(Extractor(loaded, batch_size=3).extract(sample(3)))
    check_against_oracle(loaded, sample(3), results, unixcoder=True)


def test_default_model_matches_oracle():
    """The real pretrained default (MiniLM: uncased WordPiece, a text model)."""
    loaded = default_model()
    snippets = sample(4)
    results = list(Extractor(loaded, batch_size=3).extract(snippets))
    check_against_oracle(loaded, snippets, results)
    one = list(Extractor(loaded, batch_size=1).extract(snippets))
    for a, b in zip(results, one):
        np.testing.assert_allclose(a.attention, b.attention, atol=ATOL)
        np.testing.assert_allclose(a.hidden_states, b.hidden_states, atol=ATOL)
    # a pretrained model's attention rows over code tokens (specials dropped) sum to < 1
    sums = results[1].attention.sum(-1)
    assert np.all(sums > 0) and np.all(sums <= 1 + 1e-5)


def test_code_that_looks_like_special_tokens_is_text():
    loaded = tiny_loaded("codebert")
    s = snippet("trap", "x = '</s><s>'\n")
    r = next(Extractor(loaded).extract([s]))
    assert r.n_tokens_without_subword == 0 and len(r.tokens) == len(s.token_starts)


def test_outputs_can_be_switched_off():
    loaded = tiny_loaded("codet5")
    only_hs = next(Extractor(loaded, attention=False).extract(sample(1)))
    only_att = next(Extractor(loaded, hidden_states=False).extract(sample(1)))
    both = next(Extractor(loaded).extract(sample(1)))
    assert only_hs.attention is None and only_att.hidden_states is None
    np.testing.assert_allclose(only_hs.hidden_states, both.hidden_states, atol=ATOL)
    np.testing.assert_allclose(only_att.attention, both.attention, atol=ATOL)


def test_snippet_without_tokens_gives_empty_arrays():
    loaded = tiny_loaded("llama")
    s = snippet("comment", "# only a comment\n")
    assert len(s.token_starts) == 0
    r, after = list(Extractor(loaded, heads="all").extract([s, sample(1)[0]]))
    assert r.status == "ok" and r.tokens.shape == (0,)
    assert r.attention.shape == (2, 4, 0, 0) and r.hidden_states.shape == (3, 0, 64)
    assert r.n_unmatched_subwords > 0 and after.attention.shape[-1] > 0


def test_extraction_is_lazy():
    def snippets():
        yield from sample(2)
        raise RuntimeError("read past the first batch")

    # Reads one window (batch_size * bucket_batches snippets) ahead, and a failure while reading
    # surfaces where it happened in the stream, after the results before it.
    it = Extractor(tiny_loaded("codebert"), batch_size=2, bucket_batches=1).extract(snippets())
    assert [next(it).id, next(it).id] == [0, 1]
    with pytest.raises(RuntimeError, match="first batch"):
        next(it)
    # inference mode is confined to the batch, not leaked into the caller between items
    assert not torch.is_inference_mode_enabled()


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("heads", ["mean", "all"])
def test_attention_rows_are_checked(heads, pooling):
    loaded = load_model(str(tiny_loaded("codebert").info.path), device="cpu")
    attn = [m for m in loaded.model.modules() if type(m).__name__ == "RobertaSelfAttention"]
    for m in attn:  # halve the weights: rows no longer sum to 1
        m.register_forward_hook(lambda mod, args, out: (out[0], out[1] * 0.5))
    with pytest.raises(ModelLoadError, match="sum to 1"):
        list(Extractor(loaded, heads=heads, pooling=pooling).extract(sample(1)))
    assert len(list(Extractor(loaded, check_attention=False).extract(sample(1)))) == 1


def test_bfloat16_is_close_to_float32():
    folder = tiny_loaded("codebert").info.path
    r16 = next(Extractor(folder, dtype="bfloat16", device="cpu").extract(sample(1)))
    r32 = next(Extractor(tiny_loaded("codebert")).extract(sample(1)))
    assert r16.attention.dtype == np.float32
    np.testing.assert_allclose(r16.attention, r32.attention, atol=2e-2)
    np.testing.assert_allclose(r16.hidden_states, r32.hidden_states, atol=0.15)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"length_policy": "window"}, "window"),
        ({"length_policy": "cut"}, "length_policy"),
        ({"heads": "min"}, "heads"),
        ({"pooling": "dense"}, "pooling"),
        ({"attention": False, "hidden_states": False}, "nothing"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_subwords": 2}, "room"),
        ({"dtype": "float16"}, "already loaded"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(InputError, match=match):
        Extractor(tiny_loaded("codebert"), **kwargs)


def test_bad_inputs():
    ex = Extractor(tiny_loaded("codebert"))
    with pytest.raises(InputError, match="ModelInput"):
        list(ex.extract(["def f(): pass"]))
    with pytest.raises(AlignmentError):
        list(ex.extract([ModelInput("x", "ab", np.array([0]), np.array([5]))]))


def test_length_buckets_change_nothing_but_the_batches():
    loaded = tiny_loaded("codebert")
    snippets = sample(7)
    plain = list(Extractor(loaded, batch_size=2, bucket_batches=1).extract(snippets))
    bucketed = list(Extractor(loaded, batch_size=2, bucket_batches=4).extract(snippets))
    assert [r.id for r in bucketed] == [r.id for r in plain]
    for a, b in zip(plain, bucketed):
        np.testing.assert_allclose(a.attention, b.attention, atol=1e-5)
        np.testing.assert_allclose(a.hidden_states, b.hidden_states, atol=1e-5)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("kind", ["codebert", "codet5"])
def test_hidden_state_spans_of_their_own_match_the_oracle(kind, pooling):
    """One forward pass, two token sets: attention over the code tokens, hidden states over the
    string-collapsed ones (AST-Probe's), each equal to the oracle on its own spans."""
    loaded = tiny_loaded(kind)
    snippets = [s.with_hidden_state_tokens(parse(s.code, "python").tokens(collapse_strings=True)) for s in sample()]
    assert any(len(s.hidden_state_starts) != len(s.token_starts) for s in snippets)
    both = list(Extractor(loaded, batch_size=4, pooling=pooling).extract(snippets))
    for s, r in zip(snippets, both):
        att = oracle_extract(loaded, s.code, s.token_starts, s.token_ends)
        hs = oracle_extract(loaded, s.code, s.hidden_state_starts, s.hidden_state_ends)
        assert r.tokens.tolist() == att.tokens and r.hidden_state_tokens.tolist() == hs.tokens
        np.testing.assert_allclose(r.attention, att.attention, rtol=0, atol=ATOL)
        np.testing.assert_allclose(r.hidden_states, hs.hidden_states, rtol=0, atol=ATOL)


def test_hidden_state_spans_of_their_own_under_truncation():
    """A cut input keeps only the hidden-state tokens whose subwords were all fed to the model."""
    loaded = tiny_loaded("codebert")
    s = sample()[2]
    s = s.with_hidden_state_tokens(parse(s.code, "python").tokens(collapse_strings=True))
    r = next(Extractor(loaded, max_subwords=40).extract([s]))
    assert r.status == "truncated"
    full = next(
        Extractor(loaded, hidden_states=True).extract(
            [ModelInput(0, s.code, s.hidden_state_starts, s.hidden_state_ends)]
        )
    )
    assert 0 < len(r.hidden_state_tokens) < len(full.tokens)
    assert r.hidden_states.shape[1] == len(r.hidden_state_tokens)
    assert r.hidden_state_tokens.tolist() == full.tokens.tolist()[: len(r.hidden_state_tokens)]
    # the first hidden-state token left out reaches past the last code token the model read
    left_out = full.tokens[len(r.hidden_state_tokens)]
    assert s.hidden_state_ends[left_out] > s.token_ends[r.tokens[-1]]
