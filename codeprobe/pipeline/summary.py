"""`RUN/summary.json`: every (model, language, dataset) result of a run, each method's section
from its registration (`codeprobe.pipeline.registry`), with the run's config, timings and
versions.

The file carries `schema_version` (`SCHEMA_VERSION`); `read_summary` reads the current version
and every earlier one (upgrading it in memory, and saying which version it read).

Schema 2 (this codeprobe): each result has `model` (the config's spec), `model_name` (its one
display name), `language`, `dataset`, `folder`, for a checkpoint `step` and `checkpoint`,
`data` (sample counts and skips by reason), `model_info`, and one section per method that ran
(`cat`, `astprobe`: see each method's `summarize`; `layer` is a transformer layer, AST-Probe's
rows are by `hidden_state`, 0 = the embeddings). A run with a checkpoint series also has
`series`, one record per series spec (`codeprobe.pipeline.series.SeriesState.as_dict`): `model`,
`name`, `folder`, `found` (checkpoints matched), `probed` (their steps probed), `duplicates`
({step: the earlier step whose weights it repeats}; a duplicate has no result of its own: its
result is that step's), `skipped` (`checkpoint`, `step`, `reason`, `detail` each) and
`skipped_by_reason` (counts); runs written before it have none. Such a run also has `onsets`
(`codeprobe.pipeline.series_onsets`): per series, language, dataset, method with per-snippet
scores and row of its series curve, when its score starts to change (`onset_rule`: the rule's
`name` and `text`, `codeprobe.onsets`), each record with `series`, `model`, `language`, `dataset`,
`method`, `index_name` ("layer", "hidden state", "relation"), `index`, `rule`, `reference_step`
(the first checkpoint), `step` (the onset; null: none), `direction` ("up", "down"; null),
`steps_after` (later steps that confirm it) and `differences` (per later step: `step`, `mean`,
`ci`, `n`, `distinguishable`, of score(step) - score(reference_step), paired over snippets).
Schema 1 (no `schema_version`): the same
without `model_name`, with AST-Probe's `hidden_state` called `layer` (`layers`, `best_layer`,
`vectors_reused`), and a flat config.
"""

from __future__ import annotations

from typing import Any

from codeprobe.errors import InputError, ModelLoadError
from codeprobe.files import json_value, read_json, write_json
from codeprobe.model.checkpoints import is_checkpoint_series, series_name
from codeprobe.onsets import RULE, RULE_TEXT
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.registry import methods
from codeprobe.pipeline.runfolder import RunFolder, model_display_name
from codeprobe.pipeline.series import ProbedModel, SeriesState, recorded_models, series_line, series_state
from codeprobe.pipeline.series_onsets import series_onsets
from codeprobe.uncertainty import N_RESAMPLES

SCHEMA_VERSION = 2

UNCERTAINTY_NOTE = (
    f"95% percentile bootstrap intervals over snippets ({N_RESAMPLES} resamples, seeded); "
    "differences are paired (the same snippets scored both ways)"
)

TEXT_MODEL_NOTE = (
    "The packaged default model is sentence-transformers/all-MiniLM-L6-v2, a *text* sentence "
    "encoder (not a code model): its numbers are not CodeBERT's or any code model's."
)


def summarize_run(
    run: RunFolder,
    *,
    seconds: float | None = None,
    versions: dict[str, str] | None = None,
    stages: dict[str, float] | None = None,
    series: list[SeriesState] | None = None,
    not_read: list[dict[str, str]] | None = None,
    execution: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Collect every result of a run folder into RUN/summary.json (written atomically) and
    return it. Intervals are 95% percentile bootstraps over snippets, seeded.

    Args:
        series: what each model spec stood for in this run (`codeprobe.pipeline.series.
            series_state`, with the load check the runner made); None: found again, unchecked.
        not_read: the (language, dataset) pairs of the config that were not read, with their
            reasons (`codeprobe.pipeline.experiment.DataPlan.as_records`): no result, recorded as
            `not_read`.
        execution: what ran the steps and where each ran (`task_runner`, and `steps`: {step
            name: {worker: steps}}, `codeprobe.pipeline.steps.Placements`), recorded as
            `execution`; the steps of this invocation up to the summary (a resumed run counts
            the steps it found done where it found them).
    """
    cfg = RunConfig.read(run.config)
    states = {state.spec: state for state in series or ()}
    for spec in cfg.models:
        if spec not in states and is_checkpoint_series(spec):
            try:
                states[spec] = series_state(spec)
            except (ModelLoadError, InputError):
                pass  # none left: the recorded results remain
    skipped = {(r["language"], r["dataset"]) for r in not_read or ()}
    results = [
        _result(run, cfg, probed, language, dataset)
        for spec in cfg.models
        for probed in recorded_models(run, spec, states.get(spec))
        for language in cfg.languages
        for dataset in cfg.datasets
        if (language, dataset) not in skipped
    ]
    records = [states[spec].as_dict() for spec in cfg.models if spec in states and states[spec].is_series]
    onsets = series_onsets(run, results, records, cfg.seed)
    summary = {
        "schema_version": SCHEMA_VERSION,
        "run": str(run.root),
        "config": cfg.to_dict(),
        "seconds": seconds,
        "stages": stages or {},
        "versions": versions or {},
        "uncertainty": UNCERTAINTY_NOTE,
        "results": results,
        **({"series": records} if records else {}),
        **({"onset_rule": {"name": RULE, "text": RULE_TEXT}, "onsets": onsets} if onsets else {}),
        **({"not_read": list(not_read)} if not_read else {}),
        **({"execution": execution} if execution else {}),
    }
    write_json(run.summary, summary, sort_keys=False)
    return json_value(summary)  # as the file holds it (NaN as null)


def _result(run: RunFolder, cfg: RunConfig, probed: ProbedModel, language: str, dataset: str) -> dict[str, Any]:
    out: dict[str, Any] = {"model": probed.spec, "language": language, "dataset": dataset, "folder": probed.folder}
    if probed.step is not None:
        out["step"] = probed.step
        out["checkpoint"] = probed.name or None  # None: deleted since it was probed
    report = run.data(language, dataset) / "report.json"
    if report.exists():
        out["data"] = read_json(report)
    info = None
    for m in methods():
        folder = run.results(m.name, probed.folder, language, dataset)
        section = m.summarize(folder, cfg) if folder.path.is_dir() else None
        if section is not None:
            out[m.name] = section
            info = info or m.model_info(folder)
    if info is not None:
        out["model_info"] = info
    out["model_name"] = model_display_name((info or {}).get("name") or probed.spec)
    return out


def read_summary(run: RunFolder) -> dict[str, Any]:
    """A finished run's summary in the current schema (`schema_read` says the version on disk).

    Raises:
        FileNotFoundError: the folder holds no finished run.
        ValueError: a schema newer than this codeprobe reads.
    """
    summary = run.read_summary()
    version = summary.get("schema_version", 1)
    if version > SCHEMA_VERSION:
        raise ValueError(
            f"{run.summary} has summary schema {version}; this codeprobe reads up to "
            f"{SCHEMA_VERSION}: upgrade codeprobe"
        )
    if version == 1:
        summary["config"] = RunConfig.model_validate(summary.get("config") or {}).to_dict()
        for r in summary.get("results", []):
            info = r.get("model_info") or {}
            r["model_name"] = model_display_name(info.get("name") or r["model"])
            if r.get("astprobe"):
                r["astprobe"] = _astprobe_v1(r["astprobe"])
    summary["schema_read"] = version
    summary["schema_version"] = SCHEMA_VERSION
    return summary


def _astprobe_v1(a: dict[str, Any]) -> dict[str, Any]:
    """Schema 1's AST-Probe section in schema 2's names: `layer` (a hidden-states index there)
    becomes `hidden_state`, `layers` `hidden_states`, `vectors_reused` `hidden_states_reused`."""

    def rows(entries):
        return [{("hidden_state" if k == "layer" else k): v for k, v in e.items()} for e in entries or []]

    a = dict(a)
    a["hidden_states"] = rows(a.pop("layers", []))
    a["best_hidden_state"] = a.pop("best_layer", None)
    a["hidden_states_reused"] = a.pop("vectors_reused", 0)
    base = a.get("baselines") or {}
    a["baselines"] = {
        **base,
        "embedding": (rows([base["embedding"]])[0] if base.get("embedding") else None),
        "random": rows(base.get("random")),
    }
    if a.get("ranks"):
        ranks = {("hidden_state" if k == "layer" else k): v for k, v in a["ranks"].items()}
        a["ranks"] = {**ranks, "points": rows(ranks.get("points"))}
    return a


def is_text_model(result: dict[str, Any]) -> bool:
    return (result.get("model_info") or {}).get("is_code_model") is False


def is_last_step(summary: dict[str, Any], result: dict[str, Any]) -> bool:
    """True for a result that is not a checkpoint, or is its series' last checkpoint in the run."""
    if result.get("step") is None:
        return True
    same = [
        r["step"]
        for r in summary["results"]
        if r.get("step") is not None
        and (r["model"], r["language"], r["dataset"]) == (result["model"], result["language"], result["dataset"])
    ]
    return result["step"] == max(same)


def run_line(summary: dict[str, Any], *, code: bool = True) -> str:
    """One sentence on what a run probed: models, languages, datasets, sizes, time."""
    cfg = summary["config"]
    shown = (
        model_display_name(series_name(r["model"])) + " (checkpoints)" if r.get("step") is not None else r["model_name"]
        for r in summary["results"]
    )
    names = ", ".join(dict.fromkeys(shown)) or ", ".join(model_display_name(m) for m in cfg["models"])
    run = f"`{summary['run']}`" if code else summary["run"]
    stages = summary.get("stages") or {}
    return (
        f"Run {run}: models {names}; languages {', '.join(cfg['languages'])}; datasets "
        f"{', '.join(cfg['datasets'])}; {cfg['data']['n_snippets']} snippets each, seed {cfg['seed']}"
        + (f"; {summary['seconds']:.0f} s" if summary.get("seconds") else "")
        + (" (" + ", ".join(f"{k} {v:.0f} s" for k, v in stages.items()) + ")" if stages and code else "")
        + "."
        + (
            ""
            if summary.get("schema_read", SCHEMA_VERSION) == SCHEMA_VERSION
            else f" (Read from summary schema {summary['schema_read']}.)"
        )
    )


def series_notes(summary: dict[str, Any]) -> list[str]:
    """Per checkpoint series of a run (its `series` records): one sentence on its checkpoints,
    one naming its duplicates, one per skipped checkpoint with its reason."""
    lines = []
    for record in summary.get("series") or ():
        head = series_line(record)
        lines.append(head[0].upper() + head[1:] + ".")
        duplicates = record.get("duplicates") or {}
        if duplicates:
            lines.append(
                f"Series {record['name']}, duplicates (the same weights as an earlier step: probed once, "
                "drawn once, at the earlier step): "
                + ", ".join(
                    f"step {step} = step {of}" for step, of in sorted((int(k), v) for k, v in duplicates.items())
                )
                + "."
            )
        for skip in record.get("skipped") or ():
            where = model_display_name(skip["checkpoint"]) + (
                f" (step {skip['step']})" if skip.get("step") is not None else ""
            )
            detail = f": {skip['detail']}" if skip.get("detail") else ""
            lines.append(f"Series {record['name']}, skipped {where}: {skip['reason']}{detail}.")
    return lines


def data_lines(summary: dict[str, Any]) -> list[str]:
    """One line per dataset: rows read, kept, and skipped by reason; then `input_lines`."""
    lines = []
    for r in summary["results"]:
        data = r.get("data") or {}
        if data and is_last_step(summary, r):
            skipped = ", ".join(f"{k} {v}" for k, v in sorted((data.get("skipped") or {}).items())) or "none"
            lines.append(
                f"Data {r['language']} / {r['dataset']}: read {data.get('read')}, kept {data.get('kept')}; "
                f"skipped: {skipped}."
            )
    lines += [f"Not read: {r['dataset']} in {r['language']} ({r['reason']})." for r in summary.get("not_read") or ()]
    return list(dict.fromkeys(lines + input_lines(summary)))


def input_lines(summary: dict[str, Any]) -> list[str]:
    """One line per method and result: the snippets it was given, how many it used, how many
    the model read cut at its input limit, and how many it dropped, by reason (a method's
    section's `inputs`)."""
    lines = []
    for r in summary["results"]:
        if not is_last_step(summary, r):
            continue
        for m in methods():
            inputs = (r.get(m.name) or {}).get("inputs")
            if inputs:
                lines.append(f"{m.title} {r['model_name']}, {r['language']} / {r['dataset']}: {_inputs_text(inputs)}.")
    return lines


def _inputs_text(inputs: dict[str, Any]) -> str:
    used = inputs["used"]
    used = f"{used[0]}-{used[-1]}" if isinstance(used, list) else used
    text = f"{inputs['snippets']} snippets, {used} {inputs['used_as']}"
    limit, setting = inputs.get("max_subwords"), inputs.get("max_subwords_setting")
    limit_text = f"{limit} subwords" + (
        f" (the model's limit; the setting asks {setting})" if limit is not None and setting and limit < setting else ""
    )
    if inputs.get("truncated") is not None:
        text += f"; {inputs['truncated']} cut at {limit_text}"
    dropped = inputs.get("dropped") or {}
    if dropped:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(dropped.items()))
        text += f"; dropped: {reasons}"
        if "does_not_fit_model" in dropped or "too_long" in dropped:
            text += f" (longer than {limit_text})"
    else:
        text += "; none dropped"
    return text
