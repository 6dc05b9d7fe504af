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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from codeprobe.interrupt import check_interrupted
from codeprobe.pipeline.config import DEFAULT_MODEL

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()
_FINISHED: Counter[str] = Counter()  # steps of this process that returned, by step name


class Handle(Protocol):
    def result(self) -> str: ...


class Steps(Protocol):
    """How steps run: `submit(name, fn, *args)` starts step `fn` (registered as `name`) and
    returns a handle whose `result()` is the step's output path."""

    def submit(self, name: str, fn: Callable[..., str], *args: Any) -> Handle: ...


class _Done:
    def __init__(self, value: str) -> None:
        self._value = value

    def result(self) -> str:
        return self._value


class LocalSteps:
    """Run each step at once, in this process."""

    def submit(self, name: str, fn: Callable[..., str], *args: Any) -> Handle:
        return _Done(counted(name, fn)(*args))


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


def loaded_model(model: str, device: str | None, dtype: str = "float32"):
    """One LoadedModel per (model, device, dtype) per process, loaded again when the model's
    files change (`codeprobe.model.shared_model`): steps reuse it instead of reloading."""
    from codeprobe.model import shared_model

    return shared_model(model_arg(model), device=device, dtype=dtype)


def random_weights_model(model: str, device: str | None, dtype: str, seed: int):
    """The random-weights twin of `loaded_model(model, device, dtype)` (`codeprobe.model.
    random_weights`), one per process per model and seed."""
    return _random_copy(loaded_model(model, device, dtype), seed)


@functools.lru_cache(maxsize=2)
def _random_copy(loaded, seed: int):
    """By the LoadedModel's identity: a model loaded again after its files changed gets a new
    copy, its embeddings from the new weights."""
    from codeprobe.model import random_weights

    return random_weights(loaded, seed)


@contextmanager
def device_lock(device: str | None) -> Iterator[None]:
    """Serialise model work per device: one forward pass or probe fit at a time per device.

    Inside a Dask worker the lock is a cluster-wide `distributed.Lock`; otherwise a process lock
    (the thread task runner).
    """
    name = f"codeprobe-device-{device or 'auto'}"
    try:
        from distributed import Lock, get_worker

        get_worker()
        lock = Lock(name)
    except (ImportError, ValueError):
        with _LOCKS_GUARD:
            lock = _LOCKS.setdefault(name, threading.Lock())
    with lock:
        yield
