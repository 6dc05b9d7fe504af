"""Subword-to-token alignment against the loop oracle: hand-made spans, random spans, real
tokenizers (byte-level BPE with trimmed and untrimmed offsets, CodeT5's BPE, uncased WordPiece)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from alignment_oracle import assert_matches_oracle, oracle_align, oracle_cut
from hypothesis import given, settings
from hypothesis import strategies as st
from shared_data import cosqa_functions, shared_path

from codeprobe.alignment import align, token_boundary_cut
from codeprobe.errors import AlignmentError
from codeprobe.syntax import parse


def check(code, spans, starts, ends, special=None):
    al = align(code, np.array(spans, dtype=np.int64).reshape(-1, 2), starts, ends, special=special)
    assert_matches_oracle(al, oracle_align(code, spans, starts, ends, special))
    return al


def test_shared_subword_belongs_to_every_token_it_overlaps():
    code = "f():"
    # subwords "f" and "():" (byte-level BPE merges punctuation); tokens f ( ) :
    al = check(code, [(0, 1), (1, 4)], [0, 1, 2, 3], [1, 2, 3, 4])
    assert al.tokens.tolist() == [0, 1, 2, 3]
    assert al.n_shared_subwords == 1
    np.testing.assert_array_equal(al.pooling, [[1, 0], [0, 1], [0, 1], [0, 1]])
    att = np.array([[0.25, 0.75], [0.5, 0.5]])
    pooled = al.pooling @ att @ al.pooling.T
    assert pooled[1, 2] == 0.5 and pooled[0, 3] == 0.75  # block mean of a 1 x 1 block


def test_token_split_into_subwords_is_averaged():
    al = check("foobar = 1", [(0, 3), (3, 6), (7, 8), (9, 10)], [0, 7, 9], [6, 8, 10])
    np.testing.assert_allclose(al.pooling[0], [0.5, 0.5, 0, 0])
    assert al.sizes.tolist() == [2, 1, 1]


def test_special_whitespace_and_empty_subwords_are_ignored():
    code = "a  b # c"
    spans = [(0, 0), (0, 1), (1, 3), (3, 4), (4, 4), (5, 6), (7, 8), (0, 0)]
    special = np.array([1, 0, 0, 0, 0, 0, 0, 1], dtype=bool)
    al = check(code, spans, [0, 3], [1, 4], special=special)
    assert al.n_subwords == 8 and al.n_content_subwords == 4  # a, b, #, c
    assert al.n_unmatched_subwords == 2  # "#" and "c" (a comment, not a token)
    assert al.pooling[:, [0, 2, 4, 7]].sum() == 0


def test_token_without_subword_is_dropped_and_counted():
    code = 'x = "   "'
    # WordPiece drops whitespace: the string-content token [5, 8) gets no subword
    al = check(code, [(0, 1), (2, 3), (4, 5), (8, 9)], [0, 2, 4, 5, 8], [1, 3, 5, 8, 9])
    assert al.tokens.tolist() == [0, 1, 2, 4]
    assert al.n_tokens_without_subword == 1


def test_empty_inputs():
    al = check("", [], [], [])
    assert al.pooling.shape == (0, 0)
    al = check("x", [(0, 1)], [], [])
    assert al.pooling.shape == (0, 1) and al.n_unmatched_subwords == 1
    assert token_boundary_cut(al, 0) == 0


def test_unicode_whitespace_and_offsets_are_characters():
    code = "é\u3000ß\x1cü"  # ideographic space and a file separator are whitespace to str.isspace
    check(code, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 5)], [0, 2, 4], [1, 3, 5])


@pytest.mark.parametrize(
    "spans, starts, ends",
    [
        ([(0, 9)], [0], [1]),  # subword past the end
        ([(2, 1)], [0], [1]),  # end before start
        ([(0, 1)], [0, 1], [3, 2]),  # nested tokens
        ([(0, 1)], [2, 0], [3, 1]),  # tokens out of order
        ([(0, 1)], [0], [1, 2]),  # shapes disagree
    ],
)
def test_bad_offsets_raise(spans, starts, ends):
    with pytest.raises(AlignmentError):
        align("abc", np.array(spans), starts, ends)


def test_special_mask_length_checked():
    with pytest.raises(AlignmentError):
        align("ab", np.array([(0, 1)]), [0], [1], special=np.array([True, False]))


@st.composite
def random_case(draw):
    code = draw(st.text(alphabet="ab( )\n\u3000é", max_size=30))
    n_chars = len(code)
    cuts = sorted(draw(st.lists(st.integers(0, n_chars), max_size=12)))
    # tokens: disjoint, ordered (possibly with gaps), as the syntax core makes them
    starts, ends = [], []
    for a, b in zip(cuts[::2], cuts[1::2]):
        if b > a:
            starts.append(a)
            ends.append(b)
    spans = []
    for _ in range(draw(st.integers(0, 15))):
        s = draw(st.integers(0, n_chars))
        e = draw(st.integers(s, n_chars))
        spans.append((s, e))
    special = draw(st.lists(st.booleans(), min_size=len(spans), max_size=len(spans)))
    return code, spans, starts, ends, np.array(special, dtype=bool)


@settings(max_examples=150, deadline=None)
@given(random_case(), st.integers(0, 16))
def test_random_spans_match_oracle(case, budget):
    code, spans, starts, ends, special = case
    al = check(code, spans, starts, ends, special)
    oracle = oracle_align(code, spans, starts, ends, special)
    assert token_boundary_cut(al, budget) == oracle_cut(oracle.members, len(spans), budget)


@cache
def tokenizer(kind: str):
    from transformers import AutoTokenizer, GPT2Tokenizer

    if kind == "minilm":
        from codeprobe.model import default_model_dir

        return AutoTokenizer.from_pretrained(default_model_dir())
    if kind == "gpt2-untrimmed":  # GPT-2's tokenizer class keeps the space in "Ġx" offsets
        folder = shared_path("models", "codebert-base-tokenizer")
        return GPT2Tokenizer(
            vocab=str(folder / "vocab.json"),
            merges=str(folder / "merges.txt"),
            unk_token="<unk>",
            bos_token="<s>",
            eos_token="</s>",
        )
    return AutoTokenizer.from_pretrained(shared_path("models", f"{kind}-tokenizer"))


TRICKY = (
    "def ünïcode(x, y='</s> [CLS]'):\n"
    '    """Ça marche ﬁne\u3000ok."""\n'
    '    return {"k": x**2 + y}  # ß comment\r\n'
    "\tif x: pass\n"
)


@pytest.mark.parametrize("kind", ["codebert-base", "codet5-base", "minilm", "gpt2-untrimmed"])
@pytest.mark.parametrize("collapse_strings", [False, True])
def test_real_tokenizers_match_oracle(kind, collapse_strings):
    tok = tokenizer(kind)
    codes = [TRICKY] + [code for _, code in cosqa_functions()[:15]]
    budgets_checked = 0
    for code in codes:
        tokens = parse(code, "python").tokens(collapse_strings=collapse_strings)
        enc = tok(code, return_offsets_mapping=True, return_special_tokens_mask=True, split_special_tokens=True)
        spans = np.array(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
        special = np.array(enc["special_tokens_mask"], dtype=bool)
        al = check(code, spans, tokens.start_char, tokens.end_char, special)
        oracle = oracle_align(code, spans, tokens.start_char, tokens.end_char, special)
        assert al.n_kept > 0.9 * len(tokens)  # real code: nearly every token is covered
        for budget in (0, 7, len(spans) // 2, len(spans)):
            assert token_boundary_cut(al, budget) == oracle_cut(oracle.members, len(spans), budget)
            budgets_checked += 1
    assert budgets_checked == 4 * len(codes)


def test_wordpiece_lowercasing_keeps_original_offsets():
    tok = tokenizer("minilm")
    code = "def ÉcoleMax(): return 1"
    tokens = parse(code, "python").tokens()
    enc = tok(code, return_offsets_mapping=True, return_special_tokens_mask=True)
    al = align(
        code,
        np.array(enc["offset_mapping"]),
        tokens.start_char,
        tokens.end_char,
        special=np.array(enc["special_tokens_mask"], dtype=bool),
    )
    assert al.n_tokens_without_subword == 0 and al.n_unmatched_subwords == 0
    name = tokens.texts.index("ÉcoleMax")
    spans = np.array(enc["offset_mapping"])[al.pair_subword[al.pair_token == name]]
    assert "".join(code[s:e] for s, e in spans) == "ÉcoleMax"
