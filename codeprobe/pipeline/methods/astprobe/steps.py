"""AST-Probe's steps: the sweep over hidden states (pretrained and random weights) and the rank
sweep at the hidden state chosen on validation; `run` submits them."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from codeprobe.files import read_json
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.data import read_snippets, read_splits
from codeprobe.pipeline.registry import Target
from codeprobe.pipeline.runfolder import StepOutput, step_output, write_step_json
from codeprobe.pipeline.steps import Steps, device_lock, loaded_model, model_arg, random_weights_model
from codeprobe.probes.astprobe.probe_files import SETTINGS_FILE, WEIGHTS_FILE
from codeprobe.probes.astprobe.sweeps import probe_folder_name, select_on_validation
from codeprobe.provenance import step_key

WEIGHTS = ("pretrained", "random")


def shared_pass_tokens(cfg: RunConfig) -> dict[str, Any] | None:
    """The token settings with which an attention method's forward pass can pool AST-Probe's
    hidden states for it (`tuple_tokens` keywords), or None when AST-Probe needs its own pass:
    it reads the source as given, as CAT-probing does."""
    a = cfg.astprobe
    if a is None or a.model_input != "source" or a.remove_docstrings:
        return None
    return {"drop_line_continuations": a.drop_line_continuations}


def step_settings(cfg: RunConfig) -> dict[str, Any]:
    """What shapes a sweep beyond its points, as JSON values."""
    a = cfg.astprobe
    return {
        "seed": cfg.seed,
        "seeds": [cfg.seed + k for k in range(a.probe_seeds)],
        "batch_size": cfg.extraction.batch_size,
        "device": cfg.extraction.device,
        "dtype": cfg.extraction.dtype,
        "train": cfg.train_config().settings(),
        "preprocessing": {
            "remove_docstrings": a.remove_docstrings,
            "drop_line_continuations": a.drop_line_continuations,
            "model_input": a.model_input,
        },
    }


def saved_probes(out_path: str | Path, points: list[tuple[int, int]], weights: str) -> list[Path]:
    """The files of the probes a sweep step saved (pretrained weights only): every seed's at
    every point, under `probes/` beside its output."""
    if weights != "pretrained":
        return []
    names = {probe_folder_name(h, r) for h, r in points}
    folders = [
        p for p in (Path(out_path).parent / "probes").glob("hidden_state_*") if p.name.split("_seed_")[0] in names
    ]
    return [folder / name for folder in sorted(folders) for name in (SETTINGS_FILE, WEIGHTS_FILE)]


@step_output(
    lambda a: StepOutput(a["out_path"], a["key"], also=lambda: saved_probes(a["out_path"], a["points"], a["weights"]))
)
def sweep_step(
    model: str,
    language: str,
    data_dir: str,
    points: list[tuple[int, int]],
    weights: str,
    cfg: RunConfig,
    cache_dir: str,
    reuse: list[str],
    out_path: str,
    key: str,
) -> str:
    """Fit an AST-Probe at every (hidden state, rank) of `points` for every seed on the train
    split, early-stopped on valid, and score each on valid (for selection) and on test (for
    reporting); write them as one JSON file recording `key`, and save the probes beside it
    (pretrained weights only); done when they are, as written (`step_output`).

    Args:
        weights: "pretrained" (the model as loaded) or "random" (the same architecture with
            random weights, the paper's baseline).
        cache_dir: the run's hidden-state cache; reuse: stores an attention method's forward
            pass pooled for AST-Probe (copied, not computed again; pretrained weights only),
            removed once the caches hold their hidden states.

    Returns:
        `out_path`.
    """
    from codeprobe.model import Extractor
    from codeprobe.probes.astprobe.cache import reusable
    from codeprobe.probes.astprobe.data import ensure_nonempty, prepare_split
    from codeprobe.probes.astprobe.sweeps import sweep

    settings = step_settings(cfg)
    splits = read_splits(data_dir)
    device, dtype = cfg.extraction.device, cfg.extraction.dtype
    with device_lock(device):
        loaded = loaded_model(model, device, dtype, **cfg.extraction.placement())
        label = None
        if weights == "random":
            loaded = random_weights_model(model, device, dtype, cfg.seed, **cfg.extraction.placement())
            label = loaded.info.name
        extractor = Extractor(
            loaded, batch_size=cfg.extraction.batch_size, attention=False, hidden_states=True, length_policy="skip"
        )
        by_id = {snippet.id: snippet for snippet in read_snippets(data_dir)}
        stores = [] if weights == "random" else reusable(reuse)  # a damaged store is skipped, with a warning
        prepared = [
            prepare_split(
                [by_id[i] for i in splits[name]],
                language,
                extractor,
                Path(cache_dir),
                model_label=label,
                reuse=stores,
                hidden_states=sorted({h for h, _ in points}),  # only those this step probes are kept
                **settings["preprocessing"],
            )
            for name in ("train", "valid", "test")
        ]
        ensure_nonempty(prepared, ["training", "validation", "test"])
        for store in stores:  # moved into the caches: each hidden state is kept on disk once
            shutil.rmtree(store.path, ignore_errors=True)
        save_dir = Path(out_path).parent / "probes" if weights == "pretrained" else None
        results = sweep(
            *prepared,
            points,
            config=cfg.train_config(),
            seeds=settings["seeds"],
            save_dir=save_dir,
            model=model_arg(model),
        )
    return write_step_json(
        out_path,
        {
            "weights": weights,
            "model": loaded.info.as_dict(),
            "test_ids": list(prepared[2].ids),
            "max_subwords": extractor.max_subwords,  # longer snippets are dropped: does_not_fit_model
            "splits": {name: len(p) for name, p in zip(("train", "valid", "test"), prepared)},
            "dropped": {name: p.dropped for name, p in zip(("train", "valid", "test"), prepared)},
            "hidden_states_reused": sum(p.cache.reused for p in prepared),
            "points": [r.as_dict() for r in results],
        },
        key,
    )


@step_output(lambda a: StepOutput(a["out_path"], a["key"]))
def control_step(
    model: str,
    language: str,
    data_dir: str,
    hidden_state: int,
    rank: int,
    cfg: RunConfig,
    cache_dir: str,
    probe_dir: str,
    out_path: str,
    key: str,
) -> str:
    """Train the label control probe (`control.fit_label_control`) at `hidden_state` and score it
    and the task probe saved in `probe_dir` (the first seed's) on test; write their per-snippet
    label accuracies (or, if the control probe diverged, its `error`) and the seconds this took as
    one JSON file recording `key`.

    Returns:
        `out_path`.
    """
    from codeprobe.model import Extractor
    from codeprobe.pipeline.methods.astprobe.control import fit_label_control
    from codeprobe.probes.astprobe.data import prepare_split
    from codeprobe.probes.astprobe.estimator import ASTProbe
    from codeprobe.probes.astprobe.probe_run import ProbeDivergedError

    settings = step_settings(cfg)
    splits = read_splits(data_dir)
    device, dtype = cfg.extraction.device, cfg.extraction.dtype
    with device_lock(device):
        loaded = loaded_model(model, device, dtype, **cfg.extraction.placement())
        extractor = Extractor(
            loaded, batch_size=cfg.extraction.batch_size, attention=False, hidden_states=True, length_policy="skip"
        )
        by_id = {snippet.id: snippet for snippet in read_snippets(data_dir)}
        # The sweep's caches hold `hidden_state`: they are reopened, the model does not run.
        prepared = [
            prepare_split(
                [by_id[i] for i in splits[name]],
                language,
                extractor,
                Path(cache_dir),
                hidden_states=[hidden_state],
                **settings["preprocessing"],
            )
            for name in ("train", "valid", "test")
        ]
        task = ASTProbe.load(probe_dir, model=loaded, device=device)
        start = time.perf_counter()
        try:
            result = fit_label_control(
                [p.data(hidden_state) for p in prepared],
                [[text for t in p.tuples for text in t.tokens.texts] for p in prepared],
                (task.module_, task.vocabs_),
                rank,
                config=cfg.train_config(),
                random_state=cfg.seed,
            ).as_dict()
        except ProbeDivergedError as e:  # recorded, as a sweep records a diverged point: the run goes on
            result = {"error": str(e)}
    return write_step_json(
        out_path,
        {
            "hidden_state": hidden_state,
            "rank": rank,
            "test_ids": list(prepared[2].ids),
            "seconds": round(time.perf_counter() - start, 2),  # the control fit and both probes' scoring
            **result,
        },
        key,
    )


def run(cfg: RunConfig, steps: Steps, target: Target, log) -> None:
    """The sweep over hidden states (pretrained and random weights), then the rank sweep at the
    hidden state chosen on validation."""
    hidden_states = sorted(set(cfg.astprobe.hidden_states)) or list(range(target.n_hidden_states))
    reuse = target.shared.get("hidden_states", {})
    # The stores an attention method's pass wrote enter the key by their steps' keys, not paths.
    common = {"where": (target.model_id, target.data_key), "settings": step_settings(cfg)}

    def submit(name: str, points: list[tuple[int, int]], weights: str):
        reused = sorted(reuse) if weights == "pretrained" else []
        key = step_key(
            "astprobe-sweep", {**common, "points": points, "weights": weights, **({"reused": reused} if reused else {})}
        )
        return steps.submit(
            "astprobe-sweep",
            sweep_step,
            target.model,
            target.language,
            target.data_dir,
            points,
            weights,
            cfg,
            str(target.run.hidden_state_cache),
            [reuse[k] for k in reused],
            str(target.results.file(name)),
            key,
        )

    rank = cfg.astprobe.rank
    # Hidden state 0 (the embeddings) is always probed: it is the embedding baseline.
    real = submit("hidden_states.json", [(h, rank) for h in sorted({0, *hidden_states})], "pretrained")
    random = (
        submit("random.json", [(h, rank) for h in hidden_states], "random") if cfg.astprobe.random_baseline else None
    )
    best = select_on_validation(read_json(real.result())["points"], "hidden_state", among=hidden_states)
    log.info("AST-Probe %s / %s: best hidden state on validation %s", target.model, target.language, best)
    control = None
    if cfg.astprobe.label_control and best is not None:
        control = steps.submit(
            "astprobe-control",
            control_step,
            target.model,
            target.language,
            target.data_dir,
            best,
            rank,
            cfg,
            str(target.run.hidden_state_cache),
            str(target.results.file("probes") / probe_folder_name(best, rank)),
            str(target.results.file("label_control.json")),
            step_key("astprobe-control", {**common, "hidden_state": best, "rank": rank}),
        )
    if random is not None:
        random.result()
    if cfg.astprobe.ranks and best is not None:
        # The sweep over hidden states already holds (best, rank): the rank sweep adds the others.
        submit("ranks.json", [(best, r) for r in sorted(set(cfg.astprobe.ranks) - {rank})], "pretrained").result()
        log.info("AST-Probe %s / %s: rank sweep at hidden state %d done", target.model, target.language, best)
    if control is not None:
        control.result()
