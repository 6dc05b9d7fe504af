"""Prefect flows: the probing pipeline over models x languages x datasets (see probing.py)."""

import os

# Without PREFECT_API_URL, Prefect starts a temporary local server; on a busy 2-core machine that
# can take longer than Prefect's default 20 s wait. (A user's own setting wins.)
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# No telemetry: codeprobe runs offline, and nothing should try to reach the network.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
