"""Check, within seconds, that the flow can reach a Prefect server, before Prefect itself would
wait minutes for one that cannot start.

Without `PREFECT_API_URL`, Prefect starts a temporary server whose SQLite database lives under
`PREFECT_HOME`; if that folder cannot hold it, the server dies at start-up and Prefect waits its
whole start-up timeout (180 s here) before failing with the cause buried in a traceback. With
`PREFECT_API_URL`, a server that does not answer fails the same slow way.

It also sets codeprobe's defaults for Prefect (`use_prefect_defaults`) where a run starts, not
at import.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
