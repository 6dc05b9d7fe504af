"""The probing pipeline: a Prefect flow over models x languages x datasets (see `flow.py`).

`config` holds the RunConfig (one config, one experiment), `tasks` the cached units of work,
`flow` the flow that wires them into a run folder, `report` the summary and report writers.
The deployable entry points (`flows/` at the repository root) only import from here.
"""

import os

# Without PREFECT_API_URL, Prefect starts a temporary local server; on a busy 2-core machine that
# can take longer than Prefect's default 20 s wait. (A user's own setting wins.)
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# No telemetry: codeprobe runs offline, and nothing should try to reach the network.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
