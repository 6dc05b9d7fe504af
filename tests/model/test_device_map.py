"""A model split across devices (issue 25: `device_map`, `max_memory`): accelerate's placement
loads it, records where each module lives, gives the numbers of the unsplit model, keeps its
random-weights twin on the same devices, and is refused with a clear error where the settings
contradict each other. On this CPU-only machine every module lands on the CPU; the multi-GPU
split itself is exercised by benchmarks/bench_gpu.py where GPUs are lent."""

from __future__ import annotations

import numpy as np
import pytest
from decoder_models import decoder_models  # noqa: F401  (session fixture)

from codeprobe.errors import ModelLoadError
from codeprobe.model import load_model, random_weights
from codeprobe.model.extraction import Extractor
from codeprobe.model.model_io import ModelInput
from codeprobe.pipeline.config import ConfigError, RunConfig, parse_config
from codeprobe.pipeline.steps import model_for
from codeprobe.syntax import parse

CODE = "def add(a, b):\n    total = a + b\n    return total\n"


def _extract(lm):
    inputs = [ModelInput.from_tokens("0", CODE, parse(CODE, "python").tokens())]
    (out,) = Extractor(lm, batch_size=1).extract(inputs)
    return out


def test_a_mapped_model_gives_the_unmapped_numbers(decoder_models):  # noqa: F811
    folder = str(decoder_models.dir("llama"))
    whole = load_model(folder, device="cpu")
    mapped = load_model(folder, device_map="auto", max_memory={"cpu": "2GiB"})
    assert whole.info.device_map == () and whole.info.as_dict()["device_map"] is None
    assert mapped.info.device == "cpu" and dict(mapped.info.device_map) == {"": "cpu"}
    a, b = _extract(whole), _extract(mapped)
    np.testing.assert_array_equal(a.attention, b.attention)
    np.testing.assert_array_equal(a.hidden_states, b.hidden_states)
    twin = random_weights(mapped, seed=0)
    assert next(twin.model.parameters()).device.type == "cpu" and np.isfinite(_extract(twin).attention).all()


def test_steps_load_the_placement_their_settings_name(decoder_models):  # noqa: F811
    folder = str(decoder_models.dir("qwen2"))
    extraction = RunConfig(extraction={"device_map": "sequential"}).extraction.model_dump(mode="json")
    lm = model_for(folder, extraction)
    assert lm.info.device_map and lm is model_for(folder, extraction)  # loaded once per process
    assert model_for(folder, {**extraction, "device_map": None}) is not lm


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"device": "cpu", "device_map": "auto"}, "not both"),
        ({"max_memory": {"cpu": "1GiB"}}, "set device_map too"),
        ({"device_map": "everywhere"}, "must be one of"),
    ],
)
def test_contradictory_placements_are_refused(decoder_models, kwargs, message):  # noqa: F811
    with pytest.raises(ModelLoadError, match=message):
        load_model(str(decoder_models.dir("llama")), **kwargs)


def test_the_run_config_checks_placement():
    with pytest.raises(ConfigError, match="not both"):
        parse_config({"extraction": {"device": "cpu", "device_map": "auto"}})
    with pytest.raises(ConfigError, match="set device_map too"):
        parse_config({"extraction": {"max_memory": {"0": "10GiB"}}})
    cfg = parse_config({"extraction": {"device_map": "balanced", "max_memory": {"0": "10GiB"}}})
    assert cfg.extraction.placement() == {"device_map": "balanced", "max_memory": {"0": "10GiB"}}
