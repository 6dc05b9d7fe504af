"""How a run's steps execute, and what they share within one process.

A step is a function of small keys and paths that writes its output under the run folder,
atomically, records its key in it and returns its path (`codeprobe.pipeline.runfolder`). The
runner starts steps through a `Steps`: `LocalSteps` runs each at once in this process (the
library and the CLI); the Prefect flow runs each as a task (`codeprobe.pipeline.flow`).
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from codeprobe.interrupt import check_interrupted
from codeprobe.pipeline.config import DEFAULT_MODEL
from codeprobe.pipeline.runners import current_worker

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
_FINISHED: Counter[str] = Counter()  # steps of this process that returned, by step name


class Handle(Protocol):
    def result(self) -> str: ...


class Steps(Protocol):
    """How steps run: `submit(name, fn, *args)` starts step `fn` (registered as `name`) and
    returns a handle whose `result()` is the step's output path; `placements()` says where the
    steps whose results were read ran (`Placements.as_dict`)."""

    def submit(self, name: str, fn: Callable[..., str], *args: Any) -> Handle: ...

    def placements(self) -> dict[str, dict[str, int]]: ...

    @property
    def runner(self) -> str:
        """What runs the steps, in words (summary.json's `execution.task_runner`)."""


class Placements:
    """Where steps ran: per step name, how many ran on each worker (a Dask worker's address, or
    `codeprobe.pipeline.runners.LOCAL`), a step found done counted where it was found. Thread-safe."""

    def __init__(self) -> None:
        self._counts: dict[str, Counter[str]] = {}
        self._guard = threading.Lock()

    def add(self, name: str, worker: str) -> None:
        with self._guard:
            self._counts.setdefault(name, Counter())[worker] += 1

    def as_dict(self) -> dict[str, dict[str, int]]:
        """{step name: {worker: steps}}, sorted, for summary.json's `execution.steps`."""
        with self._guard:
            return {name: dict(sorted(c.items())) for name, c in sorted(self._counts.items())}


class _Done:
    def __init__(self, value: str) -> None:
        self._value = value

    def result(self) -> str:
        return self._value


class LocalSteps:
    """Run each step at once, in this process."""

    runner = "this process, one step at a time"

    def __init__(self) -> None:
        self._placements = Placements()

    def submit(self, name: str, fn: Callable[..., str], *args: Any) -> Handle:
        out = counted(name, fn)(*args)
        self._placements.add(name, current_worker())
        return _Done(out)

    def placements(self) -> dict[str, dict[str, int]]:
        return self._placements.as_dict()


def counted(name: str, fn: Callable[..., str]) -> Callable[..., str]:
    """`fn` as a step named `name`: it does not start once a stop was requested
    (`codeprobe.interrupt`: a step queued behind the running ones then ends at once), and each
    return is counted in `finished_steps` (a step already done, returning at once, too). Every
    `Steps` runs its steps through it.

    The wrapper keeps `fn`'s signature (`__wrapped__`, which Prefect reads) but not its qualified
    name: a task runner that pickles it (Dask) then pickles it by value, with `fn` and the helpers
    it calls by reference, rather than finding `fn` under that name."""

    def step(*args: Any, **kwargs: Any) -> str:
        check_interrupted()
        out = fn(*args, **kwargs)
        _count_finished(name)
        return out

    return functools.update_wrapper(step, fn, assigned=("__name__", "__doc__"))


def located(fn: Callable[..., str]) -> Callable[..., tuple[str, str]]:
    """`fn` (a `counted` step) returning (its output, the worker that ran it: `current_worker`),
    for a task runner whose steps may run in other processes. Keeps `fn`'s signature, and is
    pickled by value as `counted`'s wrapper is."""

    def step(*args: Any, **kwargs: Any) -> tuple[str, str]:
        return fn(*args, **kwargs), current_worker()

    return functools.update_wrapper(step, fn, assigned=("__name__", "__doc__"))


def _count_finished(name: str) -> None:
    with _LOCKS_GUARD:
        _FINISHED[name] += 1


def finished_steps() -> dict[str, int]:
    """How many steps of each name have finished (or were found done) in this process, for
    saying what an interrupted run got done."""
    with _LOCKS_GUARD:
        return dict(_FINISHED)


def model_arg(model: str) -> str | None:
    """The model layer's name for a config model name (None = the packaged default)."""
    return None if model == DEFAULT_MODEL else model


def loaded_model(
    model: str,
    device: str | None,
    dtype: str = "float32",
    device_map: str | None = None,
    max_memory: dict[str, str] | None = None,
):
    """One LoadedModel per (model, device, dtype, device map, max memory) per process, loaded
    again when the model's files change (`codeprobe.model.shared_model`): steps reuse it instead
    of reloading. A step passes its extraction settings' `device_map` and `max_memory`
    (`ExtractionConfig.placement`)."""
    from codeprobe.model import shared_model

    return shared_model(model_arg(model), device=device, dtype=dtype, device_map=device_map, max_memory=max_memory)


def random_weights_model(
    model: str,
    device: str | None,
    dtype: str,
    seed: int,
    device_map: str | None = None,
    max_memory: dict[str, str] | None = None,
):
    """The random-weights twin of `loaded_model(model, ...)` (`codeprobe.model.random_weights`:
    on the same devices), one per process per model and seed."""
    return _random_copy(loaded_model(model, device, dtype, device_map, max_memory), seed)


def model_for(model: str, extraction: Mapping[str, Any]):
    """`loaded_model` for a step's extraction settings (`ExtractionConfig` as JSON values)."""
    return loaded_model(model, *_placement(extraction))


def random_weights_for(model: str, extraction: Mapping[str, Any], seed: int):
    """`random_weights_model` for a step's extraction settings."""
    device, dtype, device_map, max_memory = _placement(extraction)
    return random_weights_model(model, device, dtype, seed, device_map, max_memory)


def _placement(extraction: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        extraction["device"],
        extraction["dtype"],
        extraction.get("device_map"),
        extraction.get("max_memory"),
    )


@functools.lru_cache(maxsize=2)
def _random_copy(loaded, seed: int):
    """By the LoadedModel's identity: a model loaded again after its files changed gets a new
    copy, its embeddings from the new weights."""
    from codeprobe.model import random_weights

    return random_weights(loaded, seed)


@contextmanager
def device_lock(device: str | None) -> Iterator[None]:
    """Serialise model work per device within this process: one forward pass or probe fit at a
    time on the model the process's threads share. Across processes there is nothing to share:
    each Dask worker process holds its own model on its own device (`codeprobe.pipeline.runners`).
    """
    name = f"codeprobe-device-{device or 'auto'}"
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(name, threading.Lock())
    with lock:
        yield
