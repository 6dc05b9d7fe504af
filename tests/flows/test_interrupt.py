"""Ctrl-C and SIGTERM stop a run (issue 27): a real `codeprobe run` in its own session, signalled
as a terminal or a scheduler signals it, stops within seconds, says in one line what finished and
how to resume, exits 130 / 143, and a rerun resumes to the numbers of an uninterrupted run; and
the cooperative checks that stop the steps' threads within a batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from astprobe.tiny_model import tiny_model_dir  # noqa: F401  (session fixture)
from flow_configs import small_config
from shared_data import cosqa_functions

from codeprobe import interrupt, provenance
from codeprobe.interrupt import Interrupted
from codeprobe.pipeline.config import parse_config
from codeprobe.pipeline.experiment import run_experiment

# From the signal to the process's end. An interrupted run needs a few seconds (the threads stop
# within a batch, the crash is reported, the interpreter exits); the bug this guards against took
# minutes. Whether the run stopped early is checked on its outputs, not on time.
STOP_WITHIN_S = 60
START_WITHIN_S = 300  # server start and imports on a busy 2-core machine

MESSAGE_END = "; rerun the same command to resume"


@pytest.fixture(autouse=True)
def no_stop_left():
    interrupt.clear_stop()
    yield
    interrupt.clear_stop()


# -- a real run, signalled --------------------------------------------------------------------


@pytest.fixture(scope="module")
def many_shards(tiny_model_dir, tmp_path_factory):  # noqa: F811
    """A config with many small CAT shards (so a run signalled after its first one still has most
    of them to compute; the first four run together), its file, and an uninterrupted run's
    summary and number of shards."""
    root = tmp_path_factory.mktemp("interrupt")
    data = root / "functions.jsonl"
    rows = [{"id": ident, "code": code} for ident, code in cosqa_functions()[:96]]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = small_config(tiny_model_dir, data, astprobe=False, n_snippets=96, shard_size=6, batch_size=2)
    path = root / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    reference = run_experiment(parse_config(config), root / "reference").parent
    n_shards = len(list(reference.glob("cat/*/*/shard-*.npz")))
    assert n_shards >= 12
    return path, json.loads((reference / "summary.json").read_text()), n_shards


def _env(tmp_path: Path) -> dict[str, str]:
    """The user's environment, with no Prefect server named (codeprobe starts the temporary one)
    and Prefect's files in a folder of the test's own."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path.parent / "prefect-home")  # one database for the module's runs
    return env


def _codeprobe_run(config: Path, run: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from codeprobe.cli import main; main(prog_name='codeprobe')"]
        + ["run", "--config", str(config), "--out", str(run)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal's foreground job
    )


def _signal_after_first_shard(proc: subprocess.Popen, sig: int) -> tuple[list[str], float]:
    """Read the run's log until "shard 1/", then signal its process group (the terminal's Ctrl-C,
    a scheduler's SIGTERM); return the whole standard error and the seconds to the run's end."""
    lines: list[str] = []
    box: dict[str, float] = {}

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if "shard 1/" in line and "sent" not in box:
                os.killpg(proc.pid, sig)
                box["sent"] = time.monotonic()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait(START_WITHIN_S + STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail("the run did not end:\n" + "".join(lines[-30:]))
    reader.join(10)
    assert "sent" in box, "the run ended before its first shard:\n" + "".join(lines[-30:])
    return lines, time.monotonic() - box["sent"]


def _assert_stopped(run: Path, lines: list[str], seconds: float, returncode: int, status: int, shards: int) -> None:
    text = "".join(lines)
    assert returncode == status, text[-3000:]
    assert seconds < STOP_WITHIN_S, f"{seconds:.0f} s from the signal to the end"
    assert lines[-1].startswith("codeprobe: interrupted: ") and lines[-1].rstrip("\n").endswith(MESSAGE_END)
    assert "cat-shard" in lines[-1]  # it names what finished
    for noise in ("Traceback", "Unable to connect", "ConnectError"):
        assert noise not in text, text[max(0, text.find(noise) - 2000) :][:6000]
    # It stopped: the CAT reduce, the summary and the report were never reached.
    n_shards = len(list(run.glob("cat/*/*/shard-*.npz")))
    assert 1 <= n_shards < shards and not (run / "summary.json").exists() and not (run / "report.md").exists()
    # ... and left no half-written file behind (write_atomic's temporary files end in .tmp*).
    assert not [p for p in run.rglob(".*") if ".tmp" in p.name]


def _cat_rows(summary: dict) -> list:
    (result,) = summary["results"]
    return [result["data"], result["cat"]["layers"]]


def test_ctrl_c_and_sigterm_stop_a_run_and_a_rerun_resumes(many_shards, tmp_path):
    config, reference, shards = many_shards
    run = tmp_path / "run"
    env = _env(tmp_path)

    source = provenance.source_hash.__wrapped__()
    proc = _codeprobe_run(config, run, env)
    lines, seconds = _signal_after_first_shard(proc, signal.SIGINT)
    _assert_stopped(run, lines, seconds, proc.returncode, 130, shards)
    first = {p: p.stat().st_mtime_ns for p in run.glob("cat/*/*/shard-*.npz")}

    # The rerun resumes (the finished shards are not computed again); a scheduler stops it too.
    proc = _codeprobe_run(config, run, env)
    lines, seconds = _signal_after_first_shard(proc, signal.SIGTERM)
    _assert_stopped(run, lines, seconds, proc.returncode, 143, shards)
    if provenance.source_hash.__wrapped__() == source:  # a change of codeprobe's code recomputes all
        assert all(p.stat().st_mtime_ns == t for p, t in first.items())

    # The same command finishes the run, with the numbers of a run never interrupted.
    proc = _codeprobe_run(config, run, env)
    out, err = proc.communicate(timeout=START_WITHIN_S + 300)
    assert proc.returncode == 0, err[-3000:]
    assert "report: " in out
    assert len(list(run.glob("cat/*/*/shard-*.npz"))) == shards
    assert _cat_rows(json.loads((run / "summary.json").read_text())) == _cat_rows(reference)


_ORPHAN = """
import os
from codeprobe.pipeline.server import TemporaryServer
server = TemporaryServer()
server.start(300)
print(server.api_url, flush=True)
os._exit(1)  # as a second Ctrl-C ends a run: no cleanup at all
"""


def test_the_temporary_server_ends_with_the_run(tmp_path):
    import httpx

    out = subprocess.run(
        [sys.executable, "-c", _ORPHAN], env=_env(tmp_path), capture_output=True, text=True, timeout=START_WITHIN_S
    )
    url = out.stdout.strip()
    assert out.returncode == 1 and url.startswith("http://127.0.0.1:"), out.stderr
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/health", timeout=2)
        except httpx.ConnectError:
            break  # it stopped itself: nothing left running in a session of its own
        except (httpx.ReadError, httpx.RemoteProtocolError):
            pass  # a request met the server on its way down: ask again until nothing listens
        assert time.monotonic() < deadline, "the server outlived the run"
        time.sleep(0.2)


# -- the cooperative checks -------------------------------------------------------------------


def test_extraction_stops_within_a_batch(tiny_model_dir):  # noqa: F811
    from codeprobe.model import Extractor, ModelInput, load_model
    from codeprobe.syntax import parse

    codes = [f"def f{k}(a, b):\n    return a + b * {k}\n" for k in range(16)]
    inputs = [ModelInput.from_tokens(str(k), c, parse(c, "python").tokens()) for k, c in enumerate(codes)]
    extractor = Extractor(load_model(str(tiny_model_dir), device="cpu"), batch_size=1, bucket_batches=8)
    forward = extractor._forward
    calls = []

    def counting(batch):
        calls.append(len(batch))
        if len(calls) == 3:  # a signal arrives during the third batch of a window of eight
            interrupt.request_stop()
        return forward(batch)

    extractor._forward = counting
    results = extractor.extract(inputs)
    assert next(results).id == "0"  # the first window holds one batch
    with pytest.raises(Interrupted):
        next(results)
    assert len(calls) == 3  # the batch under way finished; the five after it never ran


def test_probe_training_stops_within_a_batch(monkeypatch):
    from codeprobe.probes.astprobe import LabelVocab, ProbeData, TrainConfig, TupleBatch, code_tuple, fit, fitting

    tuples = [code_tuple(code, "python") for _, code in cosqa_functions()[:40]]
    rng = np.random.default_rng(0)

    def data(part):
        gold = TupleBatch.from_tuples(part)
        return ProbeData(rng.normal(size=(sum(t.n_tokens for t in part), 8)).astype(np.float32), gold, "python")

    vocabs = {"python": (LabelVocab.build(t.c for t in tuples), LabelVocab.build(t.u for t in tuples))}
    step = fitting._step
    calls = []

    def counting(*args):
        calls.append(1)
        if len(calls) == 2:
            interrupt.request_stop()
        return step(*args)

    monkeypatch.setattr(fitting, "_step", counting)
    with pytest.raises(Interrupted):
        fit(data(tuples[:30]), data(tuples[30:]), vocabs, 4, config=TrainConfig(max_epochs=50, batch_size=4))
    assert len(calls) == 2  # not 50 epochs of 8 batches


def test_a_step_does_not_start_once_a_stop_was_requested():
    from codeprobe.pipeline.steps import LocalSteps, finished_steps

    ran = []
    before = finished_steps().get("probe-step", 0)
    assert LocalSteps().submit("probe-step", lambda x: ran.append(x) or "out", 1).result() == "out"
    interrupt.request_stop()
    with pytest.raises(Interrupted):
        LocalSteps().submit("probe-step", lambda x: ran.append(x) or "out", 2)
    assert ran == [1] and finished_steps()["probe-step"] == before + 1


def test_waiting_for_a_step_another_process_computes_stops_too(tmp_path):
    from filelock import FileLock

    from codeprobe.pipeline.runfolder import computing, lock_path

    out = tmp_path / "step.json"
    other = FileLock(lock_path(out))  # held as by another process computing the step
    other.acquire()
    ended = []

    def wait_for_it() -> None:
        try:
            with computing(out, "key"):
                ended.append("computed")
        except Interrupted:
            ended.append("interrupted")

    waiter = threading.Thread(target=wait_for_it, daemon=True)
    try:
        waiter.start()
        time.sleep(0.5)
        interrupt.request_stop()
        waiter.join(10)
        assert ended == ["interrupted"]
    finally:
        other.release()


def test_first_signal_interrupts_and_stops_threads_and_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as caught:
        with interrupt.handle_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises in this thread at once
    assert caught.value.signum == signal.SIGTERM and interrupt.stop_requested()
    assert interrupt.exit_status() == 143
    assert signal.getsignal(signal.SIGTERM) is before


_SLOW_CLEANUP = """
import os, signal, time
from codeprobe.interrupt import handle_signals
with handle_signals():
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(60)
    except KeyboardInterrupt:
        print("cleaning up", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)  # the user does not wait for a slow cleanup
        time.sleep(60)
print("not reached", flush=True)
"""


def test_a_second_signal_exits_at_once():
    out = subprocess.run([sys.executable, "-c", _SLOW_CLEANUP], capture_output=True, text=True, timeout=50)
    assert out.returncode == 143 and out.stdout == "cleaning up\n", out.stderr
    assert out.stderr.strip().splitlines()[-1] == "codeprobe: SIGTERM again: stopping at once"


def test_an_interrupt_leaving_a_flow_body_stops_its_threads_and_an_error_does_not():
    with pytest.raises(ValueError):
        with interrupt.interruptible():
            raise ValueError("a failing step")
    assert not interrupt.stop_requested()
    with pytest.raises(KeyboardInterrupt):
        with interrupt.interruptible():
            raise KeyboardInterrupt
    assert interrupt.stop_requested()
    with interrupt.interruptible():  # the next run of this process starts afresh
        assert not interrupt.stop_requested()
