"""The diagnostic classifiers' steps: per task, the classifiers of every hidden state (stacked)
for the task and its control task, and the online codelength (MDL) at the hidden states the
config asks for; `run` submits them.

    RUN/diagnostic/<model>/<language>-<dataset>/<task>.json          the fit (pretrained weights)
                                                <task>.random.json   the random-weights model's
                                                <task>.mdl.json      the online codes
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from codeprobe.files import read_json
from codeprobe.pipeline.config import RunConfig
from codeprobe.pipeline.data import empty_splits
from codeprobe.pipeline.methods.diagnostic.inputs import RunInputs, preprocessing, read_inputs
from codeprobe.pipeline.registry import Target
from codeprobe.pipeline.runfolder import StepOutput, step_output, write_step_json
from codeprobe.pipeline.steps import Steps
from codeprobe.provenance import step_key

NAME = "diagnostic"


def hidden_states(cfg: RunConfig, n_hidden_states: int) -> list[int]:
    """The hidden states classified: the config's, else AST-Probe's (else all), with 0 (the
    embeddings, a baseline) always."""
    chosen = cfg.diagnostic.hidden_states or (cfg.astprobe.hidden_states if cfg.astprobe else ())
    return sorted({0, *(chosen or range(n_hidden_states))})


def train_config(cfg: RunConfig):
    """The classifiers' `StructuralTrainConfig`: the reference's recipe with the config's
    learning rate and epochs, on the run's device, on one CPU thread (the products are small:
    on a busy machine one thread beats OpenMP's spinning ones, and the tasks' steps may run at
    once)."""
    from codeprobe.probes.structural.config import StructuralTrainConfig

    d = cfg.diagnostic
    device = cfg.extraction.device or "cpu"
    return StructuralTrainConfig(
        lr=d.lr, max_epochs=d.max_epochs, patience=d.patience, device=device, threads=1 if device == "cpu" else None
    )


def step_settings(cfg: RunConfig) -> dict[str, Any]:
    """What shapes a step beyond its task, weights and hidden states, as JSON values."""
    from dataclasses import asdict

    d = cfg.diagnostic
    return {
        "seed": cfg.seed,
        "batch_size": cfg.extraction.batch_size,
        "device": cfg.extraction.device,
        "dtype": cfg.extraction.dtype,
        "preprocessing": preprocessing(cfg),
        "min_count": d.min_count,
        "control": d.control,
        "train": asdict(train_config(cfg)),
    }


def labels(inputs: RunInputs, task: str, cfg: RunConfig) -> tuple[Any, dict[str, dict[str, list[np.ndarray]]]]:
    """(the task's `LabelVocabulary`, {"task": ..., "control": ...} -> split -> per-snippet class
    ids): the vocabulary and the control task are drawn from the training split only."""
    from codeprobe.probes.diagnostic import ControlTask, LabelVocabulary, token_labels

    names = {s: [token_labels(t, task) for t in split.trees] for s, split in inputs.splits.items()}
    vocab = LabelVocabulary.from_labels(names["train"], min_count=cfg.diagnostic.min_count)
    out = {"task": {s: [vocab.encode(a) for a in v] for s, v in names.items()}}
    if cfg.diagnostic.control:
        control = ControlTask.from_labels(out["task"]["train"], len(vocab), random_state=cfg.seed)
        out["control"] = {
            s: [control.labels(t.tokens.texts) for t in split.trees] for s, split in inputs.splits.items()
        }
    return vocab, out


@step_output(lambda a: StepOutput(a["out_path"], a["key"]))
def fit_step(
    model: str,
    language: str,
    data_dir: str,
    task: str,
    weights: str,
    states: list[int],
    cfg: RunConfig,
    cache_dir: str,
    out_path: str,
    key: str,
) -> str:
    """Fit the stacked classifiers of hidden states `states` on the train split for `task` and
    its control task, each hidden state's epoch selected on valid; score every hidden state on
    valid (for selection) and test (per snippet, for intervals and pairing), and the majority
    class on test; write them as one JSON file recording `key`.

    Returns:
        `out_path`.
    """
    from codeprobe.probes.diagnostic import StackedDiagnosticClassifier

    started, cpu = time.perf_counter(), time.thread_time()
    inputs = read_inputs(model, language, data_dir, weights, states, cfg, cache_dir)
    vocab, ids = labels(inputs, task, cfg)
    x = {s: split.vectors() for s, split in inputs.splits.items()}
    fits = {}
    for kind, y in ids.items():
        clf = StackedDiagnosticClassifier(n_classes=len(vocab), random_state=cfg.seed, config=train_config(cfg))
        clf.fit(x["train"], y["train"], X_valid=x["valid"], y_valid=y["valid"])
        fits[kind] = {
            "valid_accuracy": [e.accuracy for e in clf.evaluate(x["valid"], y["valid"])],
            "test_correct": [e.correct.tolist() for e in clf.evaluate(x["test"], y["test"])],
            "best_epoch": [r.best_epoch for r in clf.fit_results_],
            "hit_max_epochs": [r.hit_max_epochs for r in clf.fit_results_],
            "best_valid_loss": [r.best_valid_loss for r in clf.fit_results_],
        }
    train_ids = np.concatenate(ids["task"]["train"])
    majority = int(np.bincount(train_ids, minlength=len(vocab)).argmax())
    test = inputs.splits["test"]
    return write_step_json(
        out_path,
        {
            "task": task,
            "weights": weights,
            "model": inputs.model,
            "hidden_states": list(inputs.hidden_states),
            "classes": list(vocab.names),
            "test_ids": list(test.ids),
            "test_tokens": np.diff(test.offsets).tolist(),
            "majority": {
                "class": vocab.names[majority],
                "test_correct": [int(np.sum(a == majority)) for a in ids["task"]["test"]],
            },
            "fits": fits,
            "splits": {name: len(split) for name, split in inputs.splits.items()},
            "tokens": {name: int(split.offsets[-1]) for name, split in inputs.splits.items()},
            "dropped": {name: split.dropped for name, split in inputs.splits.items()},
            "max_subwords": inputs.max_subwords,
            "seconds": round(time.perf_counter() - started, 2),
            "cpu_seconds": round(time.thread_time() - cpu, 2),  # this step's thread: the classifiers train on it
        },
        key,
    )


@step_output(lambda a: StepOutput(a["out_path"], a["key"]))
def mdl_step(
    model: str,
    language: str,
    data_dir: str,
    task: str,
    states: list[int],
    cfg: RunConfig,
    cache_dir: str,
    out_path: str,
    key: str,
) -> str:
    """The online codelength (Voita & Titov, arXiv:2003.12298) of `task`'s training labels and
    of its control task's, at hidden states `states` (all at once), every block's classifier
    selected on valid; written as one JSON file recording `key`.

    Returns:
        `out_path`.
    """
    from codeprobe.probes.diagnostic import online_code

    started, cpu = time.perf_counter(), time.thread_time()
    inputs = read_inputs(model, language, data_dir, "pretrained", states, cfg, cache_dir)
    vocab, ids = labels(inputs, task, cfg)
    x = {s: split.vectors() for s, split in inputs.splits.items()}
    codes = {
        kind: online_code(
            x["train"],
            y["train"],
            X_valid=x["valid"],
            y_valid=y["valid"],
            n_classes=len(vocab),
            config=train_config(cfg),
            random_state=cfg.seed,
        ).as_dict()
        for kind, y in ids.items()
    }
    return write_step_json(
        out_path,
        {
            "task": task,
            "hidden_states": list(inputs.hidden_states),
            "codes": codes,
            "seconds": round(time.perf_counter() - started, 2),
            "cpu_seconds": round(time.thread_time() - cpu, 2),  # this step's thread: the classifiers train on it
        },
        key,
    )


def best_hidden_state(fit: dict[str, Any]) -> int:
    """The hidden state whose task classifier is most accurate on valid (the first of a tie)."""
    return fit["hidden_states"][int(np.argmax(fit["fits"]["task"]["valid_accuracy"]))]


def run(cfg: RunConfig, steps: Steps, target: Target, log) -> None:
    """Per task: the fit (pretrained weights; and the random-weights model's, if asked), then
    the online codes at the hidden states `mdl` asks for. Not run where a split is empty (no
    section)."""
    empty = empty_splits(target.data_dir)
    if empty:  # nothing to fit, select or report on
        log.warning(
            "diagnostic classifiers %s / %s / %s: not run, the %s split is empty",
            target.model,
            target.language,
            target.dataset,
            " and ".join(empty),
        )
        return
    states = hidden_states(cfg, target.n_hidden_states)
    common = {"where": (target.model_id, target.data_key), "settings": step_settings(cfg), "states": states}
    d = cfg.diagnostic

    def fit(task: str, weights: str):
        name = f"{task}.json" if weights == "pretrained" else f"{task}.random.json"
        key = step_key("diagnostic-fit", {**common, "task": task, "weights": weights})
        args = (target.model, target.language, target.data_dir, task, weights, states, cfg)
        return steps.submit(
            "diagnostic-fit", fit_step, *args, str(target.run.hidden_state_cache), str(target.results.file(name)), key
        )

    handles = {task: fit(task, "pretrained") for task in d.tasks}
    randoms = [fit(task, "random") for task in d.tasks] if d.random_weights else []
    mdl = []
    for task, handle in handles.items():
        result = read_json(handle.result())
        best = best_hidden_state(result)
        log.info("diagnostic %s / %s %s: best hidden state on validation %d", target.model, target.language, task, best)
        if d.mdl == "none":
            continue
        at = [best] if d.mdl == "selected" else states
        key = step_key("diagnostic-mdl", {**common, "task": task, "mdl_states": at})
        mdl.append(
            steps.submit(
                "diagnostic-mdl",
                mdl_step,
                target.model,
                target.language,
                target.data_dir,
                task,
                at,
                cfg,
                str(target.run.hidden_state_cache),
                str(target.results.file(f"{task}.mdl.json")),
                key,
            )
        )
    for handle in [*randoms, *mdl]:
        handle.result()
