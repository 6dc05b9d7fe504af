"""The hidden-state cache keeps only the hidden states a run asks for (issue 25): one file per
asked hidden state, the same values as a cache of all of them, reopened for a subset and
built again for a hidden state it lacks."""

from __future__ import annotations

import numpy as np
import pytest
from astprobe.tiny_model import tiny_model, tiny_model_dir  # noqa: F401  (session fixtures)

from codeprobe.errors import InputError
from codeprobe.model import Extractor, ModelInput
from codeprobe.probes.astprobe.cache import cached_hidden_states
from codeprobe.syntax import parse

CODES = (
    "def add(a, b):\n    return a + b\n",
    "def first(items):\n    for item in items:\n        if item:\n            return item\n    return None\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n",
)


class CountingExtractor(Extractor):
    """An Extractor that counts the snippets it runs the model on."""

    n_run = 0

    def extract(self, inputs):
        for result in super().extract(inputs):
            self.n_run += 1
            yield result


def items() -> list[ModelInput]:
    return [ModelInput.from_tokens(str(k), code, parse(code, "python").tokens()) for k, code in enumerate(CODES)]


def extractor(model) -> CountingExtractor:
    return CountingExtractor(model, batch_size=2, attention=False, length_policy="skip")


def test_only_the_hidden_states_asked_for_are_stored(tiny_model, tmp_path):  # noqa: F811
    some = cached_hidden_states(tmp_path / "some", items(), extractor(tiny_model), hidden_states=[2, 0])
    every = cached_hidden_states(tmp_path / "every", items(), extractor(tiny_model))
    assert some.stored == (0, 2) and every.stored == (0, 1, 2)
    assert sorted(f.name for f in some.path.glob("*.f16")) == ["hidden_state_00.f16", "hidden_state_02.f16"]
    for h in (0, 2):
        np.testing.assert_array_equal(some.hidden_state(h), every.hidden_state(h))
    with pytest.raises(InputError, match="not stored"):
        some.hidden_state(1)


def test_a_cache_holding_the_asked_states_is_reopened_else_built_again(tiny_model, tmp_path):  # noqa: F811
    cached_hidden_states(tmp_path, items(), extractor(tiny_model), hidden_states=[0, 2])
    subset = extractor(tiny_model)
    assert cached_hidden_states(tmp_path, items(), subset, hidden_states=[2]).stored == (0, 2)
    assert subset.n_run == 0  # reopened: the model did not run
    other = extractor(tiny_model)
    assert cached_hidden_states(tmp_path, items(), other, hidden_states=[1]).stored == (1,)
    assert other.n_run == len(CODES)


def test_a_hidden_state_the_model_lacks_is_refused(tiny_model, tmp_path):  # noqa: F811
    with pytest.raises(InputError, match="subset"):
        cached_hidden_states(tmp_path, items(), extractor(tiny_model), hidden_states=[3])
