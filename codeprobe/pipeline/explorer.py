"""The snippet explorer's step: a sample of a run's test split with CAT-probing's view (its kept
types and settings, from its CAT summary) and AST-Probe's recovered trees (the probe selected on
validation), for the HTML report. One step per (model, language, dataset) result; a checkpoint
series is explored at its last checkpoint.

    RUN/explorer/<model>/<language>-<dataset>.json
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeprobe.files import read_json
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.data import SPLITS_FILE, read_snippets, read_splits
from codeprobe.pipeline.runfolder import RunFolder, StepOutput, recorded_key, step_output, write_step_json
from codeprobe.pipeline.steps import device_lock, loaded_model
from codeprobe.pipeline.summary import is_last_step
from codeprobe.provenance import step_key


@dataclass(frozen=True)
class ExplorerJob:
    """One explorer step's inputs (paths as strings: a step takes small keys and paths)."""

    model: str
    language: str
    data_dir: str
    cat_summary: str | None
    probe_dir: str | None
    out_path: str

    def key(self, cfg: RunConfig) -> str:
        made_from = [Path(self.data_dir) / SPLITS_FILE]
        made_from += [Path(self.cat_summary)] if self.cat_summary else []
        made_from += [Path(self.probe_dir).parents[1] / "hidden_states.json"] if self.probe_dir else []
        return step_key(
            "explorer-sample",
            {
                "model": self.model,
                "language": self.language,
                "n": cfg.explorer_snippets,
                "seed": cfg.seed,
                "extraction": cfg.extraction.model_dump(mode="json"),
                "with_cat": self.cat_summary is not None,
                "with_probe": self.probe_dir is not None,
                "made_from": [recorded_key(p) for p in made_from],
            },
        )


def explorer_jobs(run: RunFolder, cfg: RunConfig, summary: dict[str, Any]) -> list[ExplorerJob]:
    """One job per (model, language, dataset) result (a series: its last checkpoint)."""
    if cfg.explorer_snippets <= 0:
        return []
    jobs = []
    for r in summary.get("results", []):
        if r.get("step") is not None and (not r.get("checkpoint") or not is_last_step(summary, r)):
            continue
        folder, language, dataset = r["folder"], r["language"], r["dataset"]
        best = (r.get("astprobe") or {}).get("best_hidden_state")
        probe = (
            run.results("astprobe", folder, language, dataset).probe(best, cfg.astprobe.rank)
            if best is not None and cfg.astprobe
            else None
        )
        cat_summary = run.results("cat", folder, language, dataset).file("summary.json")
        if not cat_summary.exists() and (probe is None or not probe.exists()):
            continue  # nothing the explorer shows was run
        jobs.append(
            ExplorerJob(
                model=r.get("checkpoint") or r["model"],
                language=language,
                data_dir=str(run.data(language, dataset)),
                cat_summary=str(cat_summary) if cat_summary.exists() else None,
                probe_dir=str(probe) if probe is not None and probe.exists() else None,
                out_path=str(run.explorer(folder, language, dataset)),
            )
        )
    return jobs


@step_output(lambda a: StepOutput(a["job"].out_path, a["key"]))
def explorer_sample(job: ExplorerJob, cfg: RunConfig, cache_dir: str, key: str) -> str:
    """The snippet explorer's sample of a run's test split, written as JSON to `job.out_path`
    (recording the step `key`; a file that records it already is kept).

    CAT view with the run's own kept types and settings (from its CAT summary); the recovered
    trees of the selected AST-Probe probe, and its per-non-terminal scores over the whole test
    split (its hidden states are already cached). Returns the output path.
    """
    from codeprobe.viz.explorer import explorer_payload, nonterminal_scores

    by_id = {s.id: s for s in read_snippets(job.data_dir)}
    test = [by_id[i] for i in read_splits(job.data_dir)["test"]]
    cat = read_json(job.cat_summary)["settings"] if job.cat_summary else None
    device = cfg.extraction.device
    with device_lock(device):
        loaded = loaded_model(job.model, device, cfg.extraction.dtype)
        probe = trees = labels = None
        if job.probe_dir:
            from codeprobe.probes.astprobe.estimator import ASTProbe

            probe = ASTProbe.load(job.probe_dir, model=loaded, cache_dir=cache_dir)
            trees = probe.predict([(s.id, s.code) for s in test])
            labels = nonterminal_scores(trees)
        payload = explorer_payload(
            [(s.id, s.code) for s in test],
            language=job.language,
            model=loaded,
            cat=cat is not None,
            types=cat["types"] if cat else None,
            distance=cat["distance"] if cat else "uast",
            quantile=cat["quantile"] if cat else 0.75,
            random_state=cat["random_state"] if cat else 0,
            max_subwords=cat["max_subwords"] if cat else 256,
            kept_types=cat["kept_types"] if cat else None,
            probe=probe,
            trees=trees,
            max_snippets=cfg.explorer_snippets,
            seed=cfg.seed,
            batch_size=cfg.extraction.batch_size,
        )
    if labels is not None:
        payload["labels"] = {
            "hidden_state": probe.hidden_state,
            "rank": probe.rank,
            "n_snippets": len(trees),
            "rows": labels,
        }
    return write_step_json(job.out_path, payload, key)
