"""One forward pass for both methods: the token hidden states CAT-probing's pass pools over
AST-Probe's tokens are the hidden states AST-Probe would compute itself, and a hidden-state cache
built from them runs the model only on the snippets that pass did not read whole."""

from __future__ import annotations

from functools import partial

import numpy as np
from astprobe.tiny_model import tiny_model, tiny_model_dir  # noqa: F401  (session fixtures)
from shared_data import cosqa_functions

from codeprobe.model import Extractor, ModelInput
from codeprobe.probes.astprobe.cache import HiddenStateCache, cached_hidden_states, write_store
from codeprobe.probes.astprobe.data import prepare_split
from codeprobe.probes.astprobe.tuples import tuple_tokens
from codeprobe.probes.cat.probe import CATProbe, SnippetInputs


class CountingExtractor(Extractor):
    """An Extractor that counts the snippets it runs the model on."""

    n_run = 0

    def extract(self, inputs):
        for result in super().extract(inputs):
            self.n_run += 1
            yield result


def functions(n=30):
    return [(str(k), code) for k, (_, code) in enumerate(cosqa_functions()[:n])]


def test_cat_pass_hidden_states_fill_the_astprobe_cache(tiny_model, tmp_path):  # noqa: F811
    snippets = functions()
    # A 64-subword cut: some functions are read whole, the others cut (those must not be shared).
    probe = CATProbe(types="all", max_subwords=64, batch_size=8, hidden_state_tokens=tuple_tokens)
    inputs = [x for x in probe.inputs(snippets, tiny_model, language="python") if isinstance(x, SnippetInputs)]
    whole = [x for x in inputs if x.hidden_states is not None]
    assert 0 < len(whole) < len(inputs)
    assert all(x.status == "ok" for x in whole) and all(
        x.status == "truncated" for x in inputs if x.hidden_states is None
    )
    write_store(
        tmp_path / "store",
        ((ModelInput(x.sample.sample_id, x.code, *x.hidden_state_spans), x.hidden_states) for x in whole),
        tiny_model.info.as_dict(),
        "a key",
    )

    def split(root, reuse=()):
        extractor = CountingExtractor(tiny_model, batch_size=4, attention=False, length_policy="skip")
        stores = [HiddenStateCache.open(p) for p in reuse]
        return prepare_split(snippets, "python", extractor, root, reuse=stores), extractor

    shared, counted = split(tmp_path / "shared", [tmp_path / "store"])
    alone, alone_counted = split(tmp_path / "alone")
    assert shared.cache.reused == len(whole)
    assert counted.n_run == alone_counted.n_run - len(whole)  # the model ran only on the rest
    assert shared.ids == alone.ids and shared.dropped == alone.dropped
    for h in range(tiny_model.info.n_layers + 1):
        # equal but for float16 rounding of float32 sums over differently padded batches
        np.testing.assert_allclose(
            np.asarray(shared.data(h).hidden_states, np.float32),
            np.asarray(alone.data(h).hidden_states, np.float32),
            rtol=2e-3,
            atol=2e-3,
        )


def test_a_store_of_another_model_is_not_used(tiny_model, tmp_path):  # noqa: F811
    snippets = functions(8)
    probe = CATProbe(types="all", batch_size=8, hidden_state_tokens=partial(tuple_tokens, drop_line_continuations=True))
    whole = [
        x
        for x in probe.inputs(snippets, tiny_model, language="python")
        if isinstance(x, SnippetInputs) and x.hidden_states is not None
    ]
    other = {**tiny_model.info.as_dict(), "fingerprint": "0" * 64}
    write_store(
        tmp_path / "store",
        ((ModelInput(x.sample.sample_id, x.code, *x.hidden_state_spans), x.hidden_states) for x in whole),
        other,
        "a key",
    )
    items = [ModelInput(x.sample.sample_id, x.code, *x.hidden_state_spans) for x in whole]
    extractor = CountingExtractor(tiny_model, attention=False, length_policy="skip")
    cache = cached_hidden_states(tmp_path / "c", items, extractor, reuse=[HiddenStateCache.open(tmp_path / "store")])
    assert cache.reused == 0 and extractor.n_run == len(items)
