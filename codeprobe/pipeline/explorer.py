"""The snippet explorer's step: a sample of a run's test split with CAT-probing's view (its kept
types and settings, from its CAT summary), AST-Probe's recovered trees (the probe selected on
validation) and, where the run scored attention-head relations, each snippet's edges of the
relations it scored with the heads it chose (at the headline's k) and their attention rows, for
the HTML report. One step per (model, language, dataset) result; a checkpoint series is explored
at its last checkpoint.

    RUN/explorer/<model>/<language>-<dataset>.json
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from codeprobe.files import read_json
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.data import SPLITS_FILE, read_snippets, read_splits
from codeprobe.pipeline.runfolder import RunFolder, StepOutput, recorded_key, step_output, write_step_json
from codeprobe.pipeline.steps import device_lock, loaded_model
from codeprobe.pipeline.summary import is_last_step
from codeprobe.provenance import step_key
from codeprobe.viz.explorer import ChosenHead, ChosenHeads


@dataclass(frozen=True)
class ExplorerJob:
    """One explorer step's inputs (paths as strings: a step takes small keys and paths).

    heads_summary, heads: the heads method's result summary (its recorded key enters the step
    key, so a rescored run gets a new sample) and the heads it chose, or None where heads did
    not run.
    """

    model: str
    language: str
    data_dir: str
    cat_summary: str | None
    probe_dir: str | None
    out_path: str
    heads_summary: str | None = None
    heads: ChosenHeads | None = None

    def key(self, cfg: RunConfig) -> str:
        made_from = [Path(self.data_dir) / SPLITS_FILE]
        made_from += [Path(self.cat_summary)] if self.cat_summary else []
        made_from += [Path(self.probe_dir).parents[1] / "hidden_states.json"] if self.probe_dir else []
        made_from += [Path(self.heads_summary)] if self.heads_summary else []
        inputs = {
            "model": self.model,
            "language": self.language,
            "n": cfg.explorer_snippets,
            "seed": cfg.seed,
            "extraction": cfg.extraction.model_dump(mode="json"),
            "with_cat": self.cat_summary is not None,
            "with_probe": self.probe_dir is not None,
            "made_from": [recorded_key(p) for p in made_from],
        }
        if self.heads is not None:  # without heads, the key of a sample made before they existed
            inputs["heads"] = asdict(self.heads)
        return step_key("explorer-sample", inputs)


def chosen_heads(section: dict[str, Any] | None) -> ChosenHeads | None:
    """The heads a run's heads summary section (`results[i]["heads"]` of summary.json) chose per
    relation and shown score, at its headline's k; None without a section or a relation."""
    if not section or not section.get("scores"):
        return None
    settings = section.get("settings", {})
    headline = section.get("headline", {})
    k = int(headline.get("k") or settings["ks"][0])
    scores, heads = [], []
    for block in section["scores"]:
        scores.append((block["direction"], block["dependent"]))
        per = []
        for r in block["relations"]:
            c = r["k"].get(str(k))
            if c is None:
                continue
            test = c.get("test") or {}
            ci = test.get("ci") or (None, None)
            per.append(
                ChosenHead(
                    relation=r["relation"],
                    layer=int(c["layer"]),
                    head=int(c["head"]),
                    test=test.get("mean"),
                    test_ci=(ci[0], ci[1]),
                    test_edges=int(r.get("test_edges") or 0),
                )
            )
        heads.append(tuple(per))
    if not any(heads):
        return None
    at = (headline.get("direction"), headline.get("dependent"))
    return ChosenHeads(
        k=k,
        scores=tuple(scores),
        heads=tuple(heads),
        causal=bool(section.get("causal")),
        max_subwords=int(settings.get("max_subwords", 256)),
        headline=scores.index(at) if at in scores else 0,
    )


def explorer_jobs(run: RunFolder, cfg: RunConfig, summary: dict[str, Any]) -> list[ExplorerJob]:
    """One job per (model, language, dataset) result with a test split (a series: its last
    checkpoint)."""
    if cfg.explorer_snippets <= 0:
        return []
    jobs = []
    for r in summary.get("results", []):
        if r.get("step") is not None and (not r.get("checkpoint") or not is_last_step(summary, r)):
            continue
        folder, language, dataset = r["folder"], r["language"], r["dataset"]
        if not read_splits(run.data(language, dataset))["test"]:
            continue  # a dataset of few source files can leave the test split empty: nothing to show
        best = (r.get("astprobe") or {}).get("best_hidden_state")
        probe = (
            run.results("astprobe", folder, language, dataset).probe(best, cfg.astprobe.rank)
            if best is not None and cfg.astprobe
            else None
        )
        cat_summary = run.results("cat", folder, language, dataset).file("summary.json")
        heads_summary = run.results("heads", folder, language, dataset).file("summary.json")
        heads = chosen_heads(r.get("heads")) if cfg.heads and heads_summary.exists() else None
        if not cat_summary.exists() and (probe is None or not probe.exists()) and heads is None:
            continue  # nothing the explorer shows was run
        jobs.append(
            ExplorerJob(
                model=r.get("checkpoint") or r["model"],
                language=language,
                data_dir=str(run.data(language, dataset)),
                cat_summary=str(cat_summary) if cat_summary.exists() else None,
                probe_dir=str(probe) if probe is not None and probe.exists() else None,
                out_path=str(run.explorer(folder, language, dataset)),
                heads_summary=str(heads_summary) if heads is not None else None,
                heads=heads,
            )
        )
    return jobs


@step_output(lambda a: StepOutput(a["job"].out_path, a["key"]))
def explorer_sample(job: ExplorerJob, cfg: RunConfig, cache_dir: str, key: str) -> str:
    """The snippet explorer's sample of a run's test split, written as JSON to `job.out_path`
    (recording the step `key`; a file that records it already is kept).

    CAT view with the run's own kept types and settings (from its CAT summary); the recovered
    trees of the selected AST-Probe probe, and its per-non-terminal scores over the whole test
    split (its hidden states are already cached); the relation edges and the chosen heads' rows
    (`job.heads`), from the CAT view's forward pass where it read the snippets as the heads
    method does. Returns the output path.
    """
    from codeprobe.viz.explorer import explorer_payload, nonterminal_scores

    by_id = {s.id: s for s in read_snippets(job.data_dir)}
    test = [by_id[i] for i in read_splits(job.data_dir)["test"]]
    cat = read_json(job.cat_summary)["settings"] if job.cat_summary else None
    device = cfg.extraction.device
    with device_lock(device):
        loaded = loaded_model(job.model, device, cfg.extraction.dtype, **cfg.extraction.placement())
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
            mask=cat.get("mask", "full") if cat else "auto",
            random_state=cat["random_state"] if cat else 0,
            max_subwords=cat["max_subwords"] if cat else 256,
            kept_types=cat["kept_types"] if cat else None,
            probe=probe,
            trees=trees,
            max_snippets=cfg.explorer_snippets,
            seed=cfg.seed,
            batch_size=cfg.extraction.batch_size,
            heads=job.heads,
        )
    if labels is not None:
        payload["labels"] = {
            "hidden_state": probe.hidden_state,
            "rank": probe.rank,
            "n_snippets": len(trees),
            "rows": labels,
        }
    return write_step_json(job.out_path, payload, key)
