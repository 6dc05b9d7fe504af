"""Where a run's steps execute: threads of this process (the default), a local Dask cluster of
worker processes, or the workers of an existing Dask scheduler (`Workers`, `task_runner`).

The run folder is the shared state: a step reads its inputs from it and writes its output into it
atomically, recording its key (`codeprobe.pipeline.runfolder`), so any worker can run any step
and a step rerun elsewhere after its worker died finds nothing half-written to count. Every
worker therefore needs the same run folder at the same path (one shared filesystem), and the
same model and dataset paths. Each worker process loads a model once and keeps it for every
step it runs (`codeprobe.pipeline.steps.loaded_model`); model work is serialised per process
(`codeprobe.pipeline.steps.device_lock`), so a worker is one model on one device.

docs/scaling.md gives the recipes (a local cluster, GPUs with dask-cuda, SLURM with
dask-jobqueue).
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any

from codeprobe.errors import InputError

log = logging.getLogger(__name__)

LOCAL = "local"  # where a step ran when no Dask worker ran it: this process's threads
THREADS = 4  # the default task runner's threads: steps interleave data work with model work


@dataclass(frozen=True)
class Workers:
    """How a run's steps are spread.

    Attributes:
        n: a local Dask cluster of `n` worker processes, one thread each (one model, one
            device per worker; with CUDA and dask-cuda installed, one GPU per worker).
        address: the address of an existing Dask scheduler ("tcp://host:8786") whose workers
            run the steps.
        Neither: this process's threads (Prefect's `ThreadPoolTaskRunner`).

    Raises:
        InputError: both set, or `n` < 1.
    """

    n: int | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.n is not None and self.address is not None:
            raise InputError("give either a number of local workers or a Dask scheduler's address, not both")
        if self.n is not None and self.n < 1:
            raise InputError(f"the number of workers must be at least 1, got {self.n}")
        if self.address is not None and not self.address.strip():
            raise InputError("the Dask scheduler's address is empty")

    @property
    def uses_dask(self) -> bool:
        return self.n is not None or self.address is not None

    def describe(self) -> str:
        """One line for logs."""
        if self.address is not None:
            return f"the workers of the Dask scheduler at {self.address}"
        if self.n is not None:
            return f"a local Dask cluster of {self.n} worker process{'es' if self.n > 1 else ''}"
        return f"{THREADS} threads of this process"


def task_runner(workers: Workers) -> Any:
    """The Prefect task runner for `workers`: `ThreadPoolTaskRunner`, or prefect-dask's
    `DaskTaskRunner` on a new local cluster (dask-cuda's `LocalCUDACluster` when CUDA is
    available and dask-cuda is installed: each worker sees one GPU) or on an existing scheduler.

    Raises:
        InputError: Dask is asked for and prefect-dask is not installed; more local workers than
            GPUs with dask-cuda.
    """
    if not workers.uses_dask:
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=THREADS)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise InputError("Dask workers need prefect-dask: pip install 'codeprobe[dask]'") from None
    if workers.address is not None:
        return DaskTaskRunner(address=workers.address)
    gpus = _gpus()
    if gpus and _has_dask_cuda():
        if workers.n > gpus:
            raise InputError(f"{workers.n} GPU workers asked for, but {gpus} GPUs are visible: one GPU per worker")
        return DaskTaskRunner(
            cluster_class="dask_cuda.LocalCUDACluster",
            cluster_kwargs={"n_workers": workers.n, "threads_per_worker": 1, "dashboard_address": ":0"},
        )
    if gpus:
        log.warning(
            "%d worker processes share the visible GPUs as cuda:0; install dask-cuda for one GPU per worker",
            workers.n,
        )
    # One thread per worker: steps on a worker share its one model, and a process per core is
    # what Dask's nanny sizes its BLAS threads for (OMP_NUM_THREADS=1).
    # The dashboard on a free port: the default 8787 may be another cluster's.
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": workers.n, "threads_per_worker": 1, "processes": True, "dashboard_address": ":0"}
    )


def dask_workers(runner: Any) -> int:
    """How many workers a Prefect task runner's Dask cluster has now (0: not a Dask runner).
    Starts the runner's client, as its first task would."""
    if not hasattr(runner, "cluster_kwargs"):  # prefect-dask's DaskTaskRunner has them
        return 0
    return len(runner.client.scheduler_info(n_workers=-1).get("workers", {}))


def describe_runner(runner: Any) -> str:
    """One line saying what a started Prefect task runner is, for summary.json's
    `execution.task_runner`: its threads, or its Dask scheduler and workers."""
    client = getattr(runner, "_client", None)
    if client is not None:
        workers = client.scheduler_info(n_workers=-1).get("workers", {})
        return f"dask scheduler {client.scheduler.address}, {len(workers)} workers"
    threads = getattr(runner, "_max_workers", None)
    return f"{type(runner).__name__}" + (f", {threads} threads" if isinstance(threads, int) else "")


def check_scheduler(address: str, timeout: float = 10.0) -> None:
    """Raise unless a Dask scheduler answers at `address` within `timeout` seconds.

    Raises:
        InputError: nothing answers there (or not a Dask scheduler), or prefect-dask's
            distributed is not installed.
    """
    try:
        from distributed import Client
    except ImportError:
        raise InputError("Dask workers need prefect-dask: pip install 'codeprobe[dask]'") from None
    from distributed.comm.addressing import get_address_host_port, parse_address

    if parse_address(address)[0] == "tcp":  # a refused connection fails now, not after the timeout
        try:
            socket.create_connection(get_address_host_port(address), timeout=timeout).close()
        except OSError as err:
            raise InputError(f"no Dask scheduler answers at {address}: {err.strerror or err}") from None
    try:
        with Client(address, timeout=f"{timeout}s", set_as_default=False) as client:
            n = len(client.scheduler_info(n_workers=-1).get("workers", {}))
    except (OSError, TimeoutError, ValueError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"no Dask scheduler answers at {address}: {detail}") from None
    if n == 0:
        log.warning("the Dask scheduler at %s has no workers yet: steps wait until some join", address)


def quiet_dask() -> None:
    """Dask's own INFO lines (nanny, scheduler, comm: dozens per run) to WARNING, here and in the
    worker processes a local cluster starts (they read DASK_LOGGING__DISTRIBUTED)."""
    import os

    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    logging.getLogger("distributed").setLevel(logging.WARNING)


def current_worker() -> str:
    """The Dask worker running this code (its address), or `LOCAL` outside a Dask worker."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return LOCAL


def _gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _has_dask_cuda() -> bool:
    import importlib.util

    return importlib.util.find_spec("dask_cuda") is not None
