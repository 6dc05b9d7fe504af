"""Check, within seconds, that the flow can reach a Prefect server, before Prefect itself would
wait minutes for one that cannot start.

Without `PREFECT_API_URL`, Prefect starts a temporary server whose SQLite database lives under
`PREFECT_HOME`; if that folder cannot hold it, the server dies at start-up and Prefect waits its
whole start-up timeout (180 s here) before failing with the cause buried in a traceback. With
`PREFECT_API_URL`, a server that does not answer fails the same slow way.

It also sets codeprobe's defaults for Prefect (`use_prefect_defaults`) where a run starts, not
at import, and, without `PREFECT_API_URL`, starts and stops the temporary server itself
(`prefect_api`, `TemporaryServer`): in a session of its own, so that the Ctrl-C that stops a run
does not kill the server the run still reports its end to.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from codeprobe.errors import CodeprobeError

# Without PREFECT_API_URL, Prefect starts a temporary local server; on a busy 2-core machine that
# can take longer than Prefect's default 20 s wait. No telemetry: codeprobe runs offline, and
# nothing should try to reach the network.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


class PrefectServerError(CodeprobeError, RuntimeError):
    """The flow has no Prefect server to talk to; the message names the cause and the fix."""


def use_prefect_defaults() -> None:
    """Set `PREFECT_DEFAULTS` in this process's environment, where the user has not set them,
    and have an already imported Prefect read them again. Called where a run starts
    (`check_prefect_server`, so `codeprobe run` and `main_job`), before Prefect is imported
    there; a library caller of the flow may call it too."""
    changed = False
    for name, value in PREFECT_DEFAULTS.items():
        if name not in os.environ:
            os.environ[name] = value
            changed = True
    context = sys.modules.get("prefect.context")
    if changed and context is not None and hasattr(context, "refresh_global_settings_context"):
        context.refresh_global_settings_context()


def check_prefect_server(timeout: float = 5.0) -> None:
    """Raise `PrefectServerError` (one line: cause and fix) if the flow could not reach a server.

    With `PREFECT_API_URL`: the server's health endpoint must answer within `timeout` seconds.
    Without: the temporary server's SQLite database folder must exist (or be creatable one level
    below an existing folder, as `~/.prefect` on a new machine) and be writable.

    Sets codeprobe's Prefect defaults first (`use_prefect_defaults`).
    """
    use_prefect_defaults()
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, PREFECT_API_URL, PREFECT_HOME

    url = PREFECT_API_URL.value()
    if url:
        import httpx

        try:
            httpx.get(url.rstrip("/") + "/health", timeout=timeout).raise_for_status()
        except httpx.HTTPError as err:
            raise PrefectServerError(
                f"the Prefect server at PREFECT_API_URL={url} does not answer ({type(err).__name__}); "
                "start it with `prefect server start`, or unset PREFECT_API_URL to use a temporary one"
            ) from None
        return
    db = PREFECT_API_DATABASE_CONNECTION_URL.value() or ""
    if not db.startswith("sqlite"):
        return  # a database server: Prefect reports its own connection errors quickly
    folder = Path(db.split(":///", 1)[-1]).expanduser().parent
    fix = "set PREFECT_HOME to a writable folder, or PREFECT_API_URL to a running server (`prefect server start`)"
    if not folder.exists():
        if not folder.parent.is_dir():
            raise PrefectServerError(
                f"Prefect's temporary server cannot start: its database folder {folder} does not exist "
                f"(PREFECT_HOME={PREFECT_HOME.value()}); {fix}"
            )
        try:
            folder.mkdir()
        except OSError as err:
            raise PrefectServerError(
                f"Prefect's temporary server cannot start: cannot create {folder} ({err.strerror}); {fix}"
            ) from None
    if not os.access(folder, os.W_OK):
        raise PrefectServerError(
            f"Prefect's temporary server cannot start: {folder} is not writable "
            f"(PREFECT_HOME={PREFECT_HOME.value()}); {fix}"
        )


# The temporary server's process: uvicorn serving Prefect's API app as Prefect's own temporary
# server does (`prefect.server.api.server.SubprocessASGIServer`), plus a watchdog thread that
# stops it once its standard input closes, that is once codeprobe's process has ended, however
# it ended (a second Ctrl-C's immediate exit, kill -9): it runs in its own session, so nothing
# else would stop it.
_SERVE = """
import os, signal, sys, threading, time
def watch():
    sys.stdin.buffer.read()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
    os._exit(1)
threading.Thread(target=watch, daemon=True).start()
import uvicorn
uvicorn.main(sys.argv[1:])
"""
# What Prefect's temporary server sets: no UI, ephemeral mode (fewer background services).
_SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
_PORT_IN_USE = 3  # uvicorn's exit status when it cannot bind


class TemporaryServer:
    """A Prefect API server on a free local port for this process's flow runs, in its own
    session (`start_new_session=True`).

    Why codeprobe starts it rather than Prefect: Prefect starts its temporary server with a plain
    `subprocess.Popen`, so it shares the terminal's process group, and Ctrl-C (or a scheduler's
    signal to the group) kills it along with the run; the run, still reporting the crash and
    flushing its events, then retried the dead server for minutes. Started in its own session,
    the server outlives the signal until the run has reported how it ended, and `stop` ends it
    afterwards. Prefect's SQLite database under `PREFECT_HOME` is the same either way.
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.log: IO[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self, timeout: float) -> None:
        """Start the server and wait until its health endpoint answers; raise
        `PrefectServerError` if it exits first or does not answer within `timeout` seconds."""
        import httpx
        from prefect.settings import get_current_settings

        env = {**os.environ, **_SERVER_ENV, **get_current_settings().to_environment_variables(exclude_unset=True)}
        env.pop("PREFECT_API_URL", None)
        deadline = time.monotonic() + timeout
        for _ in range(5):  # another process may take the port between our look and uvicorn's bind
            self.port = _free_port()
            # Its messages go to a file of its own, not to the user's terminal: its services log
            # tracebacks when they are stopped mid-flush at the end of a run, which concern
            # nobody; the file's end is shown if it fails to start.
            self.log = tempfile.TemporaryFile()
            self.process = subprocess.Popen(
                [sys.executable, "-c", _SERVE, "--factory", "prefect.server.api.server:create_app",
                 "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
                stdin=subprocess.PIPE,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )  # fmt: skip
            while self.process.poll() is None:
                try:
                    if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self._show_log()
                    self.stop()
                    raise PrefectServerError(
                        f"Prefect's temporary server did not answer within {timeout:.0f} s; set "
                        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS higher, or PREFECT_API_URL "
                        "to a running server (`prefect server start`)"
                    )
                time.sleep(0.1)
            status = self.process.returncode
            if status != _PORT_IN_USE:
                self._show_log()
            self.stop()
            if status != _PORT_IN_USE:
                break
        raise PrefectServerError(
            f"Prefect's temporary server exited at start-up (status {status}; its messages are above); "
            "set PREFECT_API_URL to a running server (`prefect server start`) to work around it"
        )

    def _show_log(self, lines: int = 30) -> None:
        """Write the end of the server's messages to standard error."""
        if self.log is not None:
            self.log.seek(0)
            tail = self.log.read().decode("utf-8", "replace").splitlines()[-lines:]
            sys.stderr.write("".join(f"prefect server: {line}\n" for line in tail))

    def stop(self, timeout: float = 10.0) -> None:
        """End the server (SIGTERM, then SIGKILL after `timeout` seconds) and reap it."""
        process, self.process = self.process, None
        log, self.log = self.log, None
        if log is not None:
            log.close()  # the server keeps its own descriptor until it ends
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _drain_prefect_workers(timeout: float = 10.0) -> None:
    """Send the logs and events Prefect still holds to the server, before it stops (as Prefect's
    test harness does): otherwise they would be retried against a closed port at exit."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=timeout)
        except RuntimeError:  # never started
            pass


@contextmanager
def prefect_api() -> Iterator[str]:
    """Within the block, this process's flows talk to a Prefect server: the one of
    `PREFECT_API_URL` if set (checked by `check_prefect_server`), else a `TemporaryServer` that
    codeprobe starts here and stops on the way out, also on Ctrl-C, SIGTERM or an error, after
    Prefect's pending logs and events are sent. Yields the API's URL.

    `PREFECT_API_URL` in this process's environment names the temporary server meanwhile, so
    Prefect (re-reading its settings: `refresh_global_settings_context`) and child processes
    (Dask workers) use it; the former value comes back at the end."""
    check_prefect_server()
    from prefect.context import refresh_global_settings_context
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    url = PREFECT_API_URL.value()
    if url:
        yield url
        return
    server = TemporaryServer()
    before = os.environ.get("PREFECT_API_URL")
    try:
        server.start(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
        os.environ["PREFECT_API_URL"] = server.api_url
        refresh_global_settings_context()
        yield server.api_url
    finally:
        try:
            if server.process is not None:
                _drain_prefect_workers()
        finally:
            if before is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = before
            refresh_global_settings_context()
            server.stop()
