"""Deployable Prefect entry points. The pipeline itself lives in `codeprobe.pipeline`; these
modules are what `prefect deploy` and `python -m flows.deploy` point at from a checkout."""
