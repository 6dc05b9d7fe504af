"""Issue 27, "noise that reads like a crash": tokenizing a snippet longer than the model's 512
positions prints nothing, because codeprobe cuts (or skips) such a snippet itself; transformers'
"Token indices sequence length is longer than the specified maximum sequence length" must not
reach the terminal. Other transformers warnings are left alone."""

from __future__ import annotations

import logging

import pytest

from codeprobe.model import Extractor, ModelInput, load_model
from codeprobe.syntax import parse

NOISE = "Token indices sequence length is longer than the specified maximum"


def long_function(n_lines: int = 150) -> str:
    body = "".join(f"    total = total + value_{i} * {i}\n" for i in range(n_lines))
    return "def long_sum(values):\n    total = 0\n" + body + "    return total\n"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.parametrize("length_policy", ["truncate", "skip"])
def test_a_snippet_over_512_subwords_is_tokenized_without_transformers_length_warning(capfd, length_policy):
    code = long_function()
    loaded = load_model(device="cpu")  # a fresh tokenizer: transformers warns once per instance
    assert len(loaded.tokenizer(code, add_special_tokens=False, verbose=False)["input_ids"]) > 512
    collect = Collect()
    root = logging.getLogger("transformers")
    root.addHandler(collect)
    try:
        extractor = Extractor(loaded, batch_size=1, length_policy=length_policy, hidden_states=False)
        (result,) = extractor.extract([ModelInput.from_tokens("long", code, parse(code, "python").tokens())])
    finally:
        root.removeHandler(collect)
    assert result.status == ("truncated" if length_policy == "truncate" else "skipped")
    err = capfd.readouterr().err
    assert NOISE not in err
    assert not [m for m in collect.messages if NOISE in m]


def test_the_tokenizer_itself_still_warns_outside_codeprobe():
    """Only codeprobe's own tokenizing is quiet: a user calling the tokenizer sees transformers'
    warning as before (nothing is filtered globally)."""
    loaded = load_model(device="cpu")
    collect = Collect()
    root = logging.getLogger("transformers")
    root.addHandler(collect)
    try:
        loaded.tokenizer(long_function(), add_special_tokens=False)
    finally:
        root.removeHandler(collect)
    assert [m for m in collect.messages if NOISE in m]
