"""Entry point for Prefect deployments: `flows/probing.py:probing_flow`."""

from codeprobe.pipeline.flow import main_job, probing_flow

__all__ = ["main_job", "probing_flow"]
