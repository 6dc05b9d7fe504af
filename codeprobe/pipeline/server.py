"""Check, within seconds, that the flow can reach a Prefect server, before Prefect itself would
wait minutes for one that cannot start.

Without `PREFECT_API_URL`, Prefect starts a temporary server whose SQLite database lives under
`PREFECT_HOME`; if that folder cannot hold it, the server dies at start-up and Prefect waits its
whole start-up timeout (180 s here) before failing with the cause buried in a traceback. With
`PREFECT_API_URL`, a server that does not answer fails the same slow way.
"""

from __future__ import annotations

import os
from pathlib import Path

from codeprobe.errors import CodeprobeError


class PrefectServerError(CodeprobeError, RuntimeError):
    """The flow has no Prefect server to talk to; the message names the cause and the fix."""


def check_prefect_server(timeout: float = 5.0) -> None:
    """Raise `PrefectServerError` (one line: cause and fix) if the flow could not reach a server.

    With `PREFECT_API_URL`: the server's health endpoint must answer within `timeout` seconds.
    Without: the temporary server's SQLite database folder must exist (or be creatable one level
    below an existing folder, as `~/.prefect` on a new machine) and be writable.
    """
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
    fix = ("set PREFECT_HOME to a writable folder, or PREFECT_API_URL to a running server "
           "(`prefect server start`)")
    if not folder.exists():
        if not folder.parent.is_dir():
            raise PrefectServerError(
                f"Prefect's temporary server cannot start: its database folder {folder} does not exist "
                f"(PREFECT_HOME={PREFECT_HOME.value()}); {fix}")
        try:
            folder.mkdir()
        except OSError as err:
            raise PrefectServerError(
                f"Prefect's temporary server cannot start: cannot create {folder} ({err.strerror}); {fix}"
            ) from None
    if not os.access(folder, os.W_OK):
        raise PrefectServerError(
            f"Prefect's temporary server cannot start: {folder} is not writable "
            f"(PREFECT_HOME={PREFECT_HOME.value()}); {fix}")
