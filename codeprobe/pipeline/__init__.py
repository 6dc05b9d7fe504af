"""The probing pipeline: one experiment (`config.RunConfig`) into one run folder
(`runfolder.RunFolder`), every registered method (`registry`, `methods/`) run by one runner
(`experiment`), in this process or as a Prefect flow (`flow`); the summary (`summary`) and the
Markdown and HTML reports (`report/`). The deployable entry points (`flows/` at the repository
root) only import from here. See docs/architecture.md.

Importing it changes nothing outside it: codeprobe's Prefect settings (a longer wait for the
temporary server, no telemetry) are set where a run starts (`server.use_prefect_defaults`).
"""
