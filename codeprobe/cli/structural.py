"""`codeprobe structural`: train the structural probes (Hewitt & Manning, NAACL 2019, N19-1419)
on a dataset (`train`), and show what a trained pair predicts for one snippet (`predict`).

`train` reads a dataset as `codeprobe astprobe train` does (`load_splits`: deduplicated, split
by source file into train / valid / test), pools the model's hidden states onto each snippet's
token-tree tokens (`codeprobe.probes.structural.vectors`), trains a distance and a depth probe
on every hidden state asked for at once (the stacked probes), selects each probe's hidden state
on the validation split (distance: corpus UUAS; depth: mean NSpr), prints every hidden state's
test scores with 95% bootstrap intervals beside the linear baseline, and writes the probe
folder:

    OUT/structural.json          the model, data, settings, selection and every score
    OUT/distance/, OUT/depth/    the selected DistanceProbe and DepthProbe (safetensors + JSON)
    OUT/stacked/distance/, OUT/stacked/depth/   the probes of every hidden state trained

`predict FILE --probe OUT` runs the recorded model on FILE and prints, per token, its gold and
predicted heads and depths, with the snippet's UUAS, DSpr, NSpr and root accuracy; `--json`
prints everything needed to recompute them, `--html` draws the trees and distance matrices.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np

from codeprobe.cli.common import (
    allow_parse_errors_option,
    device_option,
    echo_json,
    file_argument,
    parse_to_score,
    read_source,
    resolve_language,
)
from codeprobe.errors import InputError

if TYPE_CHECKING:  # the probes load torch: imported where a command runs, not at start-up
    from codeprobe.probes.structural import DepthEvaluation, DepthProbe, DistanceEvaluation, DistanceProbe

SETTINGS_FILE = "structural.json"
FILE_FORMAT = 1
# The probe folder's parts: the selected probes, and under STACKED_DIR every hidden state's.
DISTANCE_DIR, DEPTH_DIR, STACKED_DIR = "distance", "depth", "stacked"


def _int_list(value: str | None) -> list[int] | None:
    """'0,3,6' as [0, 3, 6]; empty or None: None (every hidden state)."""
    if not value:
        return None
    try:
        return [int(x) for x in value.replace(",", " ").split()]
    except ValueError:
        raise click.BadParameter(f"expected integers separated by commas, got {value!r}") from None


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


@click.group("structural")
def structural_group() -> None:
    """Structural probes (Hewitt & Manning 2019): distances and depths of the token tree."""


@structural_group.command("train")
@click.option(
    "--dataset",
    required=True,
    help="A dataset the loaders accept: .jsonl/.json with a code field, id<TAB>tokens .txt, a source "
    "directory or file, or 'stdlib'.",
)
@click.option("--lang", "--language", "language", required=True, help="Language of the snippets.")
@click.option("--model", default=None, help="Model directory or cached hub id (default: packaged MiniLM).")
@click.option(
    "--hidden-states",
    "hidden_states",
    default="",
    help="Hidden states to probe, e.g. '0,3,6' (default: all, trained together; 0 = embeddings).",
)
@click.option("--rank", type=int, default=None, help="B's columns (default: the model's width, the paper's square B).")
@click.option(
    "--target",
    type=click.Choice(["token_tree", "ast"]),
    default="token_tree",
    show_default=True,
    help="The distance probe's gold: token-tree path lengths, or the leaf-to-leaf AST distance.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Probe folder to write.")
@click.option("--n-snippets", type=int, default=None, help="Sample this many snippets (default: all).")
@click.option("--epochs", type=int, default=None, help="Most training epochs (default: the paper's 40).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the sample, the split and the probes.")
@device_option
@click.option("--batch-size", type=int, default=16, show_default=True, help="Snippets per model forward pass.")
def train_command(
    dataset, language, model, hidden_states, rank, target, out_dir, n_snippets, epochs, seed, device, batch_size
):
    """Train distance and depth probes on every hidden state asked for, select each on
    validation, print the test scores beside the linear baseline and write the probe folder."""
    from codeprobe.datasets import load_splits
    from codeprobe.files import write_json
    from codeprobe.model import Extractor, load_model
    from codeprobe.probes.structural import StackedDepthProbe, StackedDistanceProbe, StructuralTrainConfig
    from codeprobe.syntax import HEAD_RULE
    from codeprobe.syntax.languages import canonical_language

    language = canonical_language(language)
    config = StructuralTrainConfig() if epochs is None else StructuralTrainConfig(max_epochs=epochs)
    splits, report = load_splits(dataset, language, n_snippets=n_snippets, seed=seed)
    loaded = load_model(model, device=device)
    extractor = Extractor(loaded, batch_size=batch_size, attention=False, hidden_states=True, length_policy="skip")
    data = {
        name: _vectors(part, language, extractor, _int_list(hidden_states), name)
        for name, part in (("train", splits.train), ("valid", splits.valid), ("test", splits.test))
    }
    train, valid, test = data["train"], data["valid"], data["test"]
    states = list(train.hidden_states)
    common = {"rank": rank, "random_state": seed, "config": config}
    distance = StackedDistanceProbe(target=target, **common).fit(
        train.vectors, train.trees, X_valid=valid.vectors, y_valid=valid.trees
    )
    depth = StackedDepthProbe(**common).fit(train.vectors, train.trees, X_valid=valid.vectors, y_valid=valid.trees)
    scores = _Scores.of(distance, depth, valid, test, target)
    chosen = {"distance": int(np.argmax(scores.valid_uuas)), "depth": int(np.argmax(scores.valid_nspr))}

    out = Path(out_dir)
    distance.save(out / STACKED_DIR / DISTANCE_DIR)
    depth.save(out / STACKED_DIR / DEPTH_DIR)
    distance.select(chosen["distance"]).save(out / DISTANCE_DIR)
    depth.select(chosen["depth"]).save(out / DEPTH_DIR)
    settings = {
        "format": FILE_FORMAT,
        "method": "structural probes (Hewitt & Manning, NAACL 2019, N19-1419)",
        "model": {"name_or_path": _model_reference(model), "info": loaded.info.as_dict()},
        "language": language,
        "dataset": str(dataset),
        "n_snippets": n_snippets,
        "seed": seed,
        "head_rule": HEAD_RULE,
        "collapse_strings": True,
        "target": target,
        "rank": distance.rank_,
        "training": asdict(config),
        "hidden_states": states,
        "selected": {kind: states[position] for kind, position in chosen.items()},
        "selection": "validation: the distance probe's corpus UUAS, the depth probe's mean NSpr",
        "snippets": {
            name: {"read": len(part), "kept": len(data[name]), "skipped": _reasons(data[name].skipped)}
            for name, part in (("train", splits.train), ("valid", splits.valid), ("test", splits.test))
        },
        "dataset_report": report.to_dict(),
        "scores": scores.as_dict(states),
    }
    write_json(out / SETTINGS_FILE, settings, sort_keys=False)
    _print_scores(scores, states, chosen, data, loaded.info.name, distance.rank_, target)
    click.echo(f"probe folder: {out}")


def _vectors(snippets, language, extractor, hidden_states, split_name):
    """The split's `TreeVectors`, or a clear error when none of its snippets can be read."""
    from codeprobe.errors import DatasetError
    from codeprobe.probes.structural.vectors import token_tree_vectors

    vectors = token_tree_vectors([(s.id, s.code) for s in snippets], language, extractor, hidden_states=hidden_states)
    if not len(vectors):
        raise DatasetError(
            f"the {split_name} split has no snippet the model can read whole ({len(snippets)} read; skipped: "
            f"{_reasons(vectors.skipped) or 'none'}): use more snippets (--n-snippets) or a larger dataset"
        )
    return vectors


def _reasons(skipped) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, reason in skipped:
        counts[reason] = counts.get(reason, 0) + 1
    return counts


def _model_reference(model: str | None) -> str | None:
    """What `predict` loads the model from: an existing directory as an absolute path (the probe
    folder may be read from elsewhere), a hub id as given, None for the packaged model."""
    if model is not None and Path(model).exists():
        return str(Path(model).resolve())
    return model


@dataclass(frozen=True)
class _Scores:
    """Per hidden state (in the order trained): validation figures for the selection and the
    test evaluations, with the test split's linear baseline."""

    valid_uuas: np.ndarray
    valid_nspr: np.ndarray
    distance: tuple[DistanceEvaluation, ...]
    depth: tuple[DepthEvaluation, ...]
    linear_distance: DistanceEvaluation
    linear_depth: DepthEvaluation

    @classmethod
    def of(cls, distance, depth, valid, test, target: str) -> _Scores:
        from codeprobe.probes.structural import DepthEvaluation, DistanceEvaluation

        return cls(
            valid_uuas=distance.score(valid.vectors, valid.trees),
            valid_nspr=depth.score(valid.vectors, valid.trees),
            distance=distance.evaluate(test.vectors, test.trees),
            depth=depth.evaluate(test.vectors, test.trees),
            linear_distance=DistanceEvaluation.linear(test.trees, target),
            linear_depth=DepthEvaluation.linear(test.trees),
        )

    def as_dict(self, states: list[int]) -> dict:
        def distance_row(e) -> dict:
            return {
                "uuas": e.uuas,
                "uuas_per_snippet": e.interval("uuas").as_dict(),
                "dspr_by_length": e.dspr_by_length().value,
                "dspr_per_snippet": e.interval("dspr").as_dict(),
            }

        def depth_row(e) -> dict:
            return {
                "root_accuracy": e.interval("root").as_dict(),
                "nspr_by_length": e.nspr_by_length().value,
                "nspr_per_snippet": e.interval("nspr").as_dict(),
            }

        rows = []
        for k, h in enumerate(states):
            d, n = self.distance[k], self.depth[k]
            rows.append(
                {
                    "hidden_state": h,
                    "valid_uuas": float(self.valid_uuas[k]),
                    "valid_nspr": float(self.valid_nspr[k]),
                    "distance": distance_row(d),
                    "depth": depth_row(n),
                    "minus_linear": {
                        "uuas": d.difference(self.linear_distance, "uuas").as_dict(),
                        "dspr": d.difference(self.linear_distance, "dspr").as_dict(),
                        "nspr": n.difference(self.linear_depth, "nspr").as_dict(),
                        "root_accuracy": n.difference(self.linear_depth, "root").as_dict(),
                    },
                }
            )
        linear = {"distance": distance_row(self.linear_distance), "depth": depth_row(self.linear_depth)}
        return {"split": "test", "hidden_states": rows, "linear_baseline": linear}


def _ci(interval) -> str:
    """'0.412 [0.391, 0.433]'."""
    low, high = interval.as_list()
    if low is None:
        return f"{interval.mean:.3f} [n/a]"
    return f"{interval.mean:.3f} [{low:.3f}, {high:.3f}]"


def _signed(interval) -> str:
    low, high = interval.as_list()
    if low is None:
        return f"{interval.mean:+.3f} (no interval)"
    return f"{interval.mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def _print_scores(scores: _Scores, states, chosen, data, model_name: str, rank: int, target: str) -> None:
    sizes = " / ".join(f"{len(data[n])} {n}" for n in ("train", "valid", "test"))
    left_out = _reasons([s for part in data.values() for s in part.skipped])
    left = "; left out: " + ", ".join(f"{reason} {n}" for reason, n in left_out.items()) if left_out else ""
    click.echo(f"{model_name}, rank {rank}, distance target {target}; {sizes} snippets{left}")
    header = ("hidden state", "valid UUAS", "test UUAS", "test DSpr", "valid NSpr", "test NSpr", "test root acc.")
    widths = (12, 10, 22, 22, 10, 22, 22)
    click.echo("  ".join(f"{h:>{w}}" for h, w in zip(header, widths)))

    def line(label, valid_uuas, d, valid_nspr, n) -> str:
        cells = (
            label,
            valid_uuas,
            _ci(d.interval("uuas")),
            _ci(d.interval("dspr")),
            valid_nspr,
            _ci(n.interval("nspr")),
            _ci(n.interval("root")),
        )
        return "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths))

    for k, h in enumerate(states):
        picked = [kind for kind in ("distance", "depth") if chosen[kind] == k]
        note = f"  <- selected: {' and '.join(picked)}" if picked else ""
        row = line(
            str(h), f"{scores.valid_uuas[k]:.3f}", scores.distance[k], f"{scores.valid_nspr[k]:.3f}", scores.depth[k]
        )
        click.echo(row + note)
    click.echo(line("linear", "", scores.linear_distance, "", scores.linear_depth))
    d, n = scores.distance[chosen["distance"]], scores.depth[chosen["depth"]]
    click.echo(
        "test scores: means over snippets with 95% bootstrap intervals; linear: the tree of consecutive "
        "tokens (distance |i - j|, depth i)"
    )
    click.echo(
        f"distance probe: hidden state {states[chosen['distance']]} (best validation UUAS): corpus UUAS "
        f"{d.uuas:.3f}, DSpr by length {d.dspr_by_length().value:.3f}; minus linear: UUAS "
        f"{_signed(d.difference(scores.linear_distance, 'uuas'))}, DSpr "
        f"{_signed(d.difference(scores.linear_distance, 'dspr'))}"
    )
    click.echo(
        f"depth probe: hidden state {states[chosen['depth']]} (best validation NSpr): NSpr by length "
        f"{n.nspr_by_length().value:.3f}, root accuracy {n.root_accuracy:.3f}; minus linear: NSpr "
        f"{_signed(n.difference(scores.linear_depth, 'nspr'))}, root accuracy "
        f"{_signed(n.difference(scores.linear_depth, 'root'))}"
    )


# -- predict ----------------------------------------------------------------------------------


@structural_group.command("predict")
@file_argument
@click.option(
    "--probe",
    "probe_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="A probe folder written by `codeprobe structural train`.",
)
@click.option(
    "--lang",
    "--language",
    "language",
    default=None,
    help="Language of FILE (default: from its extension); must be the probe's.",
)
@click.option(
    "--hidden-state",
    type=int,
    default=None,
    help="Use this hidden state's probes (of those trained) instead of the ones selected on validation.",
)
@device_option
@allow_parse_errors_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: tokens, trees, matrices and scores.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a page with the gold and predicted token trees and the two distance matrices to this file.",
)
def predict_command(file, probe_dir, language, hidden_state, device, allow_parse_errors, as_json, html_path):
    """Predict FILE's token-tree distances and depths ('-' for standard input) with a trained
    probe folder, and score them against its gold token tree."""
    from codeprobe.model import Extractor, load_model
    from codeprobe.probes.structural.vectors import token_tree_vectors

    folder = _ProbeFolder.read(Path(probe_dir))
    lang = resolve_language(file, language)
    tree = parse_to_score(read_source(file), lang, file, allow_parse_errors)
    if tree.language != folder.language:
        raise InputError(f"this probe folder is for {folder.language}, not {tree.language}")
    probes = folder.probes(hidden_state)
    loaded = load_model(folder.model, device=device)
    if loaded.info.fingerprint != folder.fingerprint:
        raise InputError(
            f"the model at {folder.model or 'the packaged default'} is not the one {probe_dir} was trained on "
            "(its files' fingerprint differs)"
        )
    name = Path(file).name if file != "-" else "<stdin>"
    states = [probes.states["distance"], probes.states["depth"]]
    extractor = Extractor(loaded, batch_size=1, attention=False, hidden_states=True, length_policy="skip")
    vectors = token_tree_vectors([(name, tree.code)], tree.language, extractor, hidden_states=states)
    if not len(vectors):
        raise InputError(f"{file} cannot be probed: {vectors.skipped[0][1]}")
    obj = _prediction(name, vectors.trees[0], vectors.vectors[0], probes, folder, loaded.info)
    if html_path:
        from codeprobe.viz.html import write_html
        from codeprobe.viz.structural_page import structural_html

        write_html(structural_html(obj), html_path)
    if as_json:
        echo_json(obj)
        return
    _print_prediction(obj)


@dataclass(frozen=True)
class _ProbeFolder:
    """What `train` wrote: where, and the settings `predict` reads back."""

    path: Path
    settings: dict

    @classmethod
    def read(cls, path: Path) -> _ProbeFolder:
        """Raises InputError: no such folder, or one without a readable `structural.json`."""
        from codeprobe.files import read_json

        if not path.is_dir():
            raise InputError(f"no probe folder at {path}: train one with `codeprobe structural train --out {path}`")
        try:
            settings = read_json(path / SETTINGS_FILE)
        except FileNotFoundError:
            raise InputError(
                f"{path} is not a structural probe folder (no {SETTINGS_FILE}): train one with "
                "`codeprobe structural train`"
            ) from None
        except (OSError, ValueError) as err:
            raise InputError(f"cannot read {path / SETTINGS_FILE}: {err}") from None
        if settings.get("format") != FILE_FORMAT:
            raise InputError(f"{path / SETTINGS_FILE} has format {settings.get('format')!r}, not {FILE_FORMAT}")
        return cls(path, settings)

    @property
    def language(self) -> str:
        return self.settings["language"]

    @property
    def model(self) -> str | None:
        return self.settings["model"]["name_or_path"]

    @property
    def fingerprint(self) -> str:
        return self.settings["model"]["info"]["fingerprint"]

    def probes(self, hidden_state: int | None) -> _Probes:
        """The selected probes, or those of `hidden_state` from the stacked ones.

        Raises:
            InputError: a hidden state that was not trained; ModelLoadError: unreadable probes.
        """
        from codeprobe.probes.structural import DepthProbe, DistanceProbe, StackedDepthProbe, StackedDistanceProbe

        if hidden_state is None:
            distance = DistanceProbe.load(self.path / DISTANCE_DIR)
            depth = DepthProbe.load(self.path / DEPTH_DIR)
            return _Probes(distance, depth, dict(self.settings["selected"]))
        trained = self.settings["hidden_states"]
        if hidden_state not in trained:
            raise InputError(f"hidden state {hidden_state} was not trained in {self.path}: choose one of {trained}")
        position = trained.index(hidden_state)
        distance = StackedDistanceProbe.load(self.path / STACKED_DIR / DISTANCE_DIR).select(position)
        depth = StackedDepthProbe.load(self.path / STACKED_DIR / DEPTH_DIR).select(position)
        return _Probes(distance, depth, {"distance": hidden_state, "depth": hidden_state})


@dataclass(frozen=True)
class _Probes:
    distance: DistanceProbe
    depth: DepthProbe
    states: dict[str, int]


def _prediction(name: str, tree, vectors: np.ndarray, probes: _Probes, folder: _ProbeFolder, info) -> dict:
    """The JSON object of `predict`: every array the scores are computed from, and the scores."""
    from codeprobe.probes.structural import DepthEvaluation, DistanceEvaluation, spanning_tree
    from codeprobe.probes.structural.data import gold_distance

    target = probes.distance.target
    predicted = probes.distance.predict([vectors[0]])[0]
    depths = probes.depth.predict([vectors[1]])[0]
    scored = DistanceEvaluation.of([predicted], [tree], target)
    depth_scored = DepthEvaluation.of([depths], [tree])
    linear = DistanceEvaluation.linear([tree], target)
    linear_depth = DepthEvaluation.linear([tree])
    tokens = tree.tokens
    code = tokens.tree.code
    return {
        "file": name,
        "language": folder.language,
        "probe": str(folder.path),
        "model": {k: info.as_dict()[k] for k in ("name", "architecture", "n_layers", "hidden_size", "fingerprint")},
        "hidden_state": probes.states,
        "rank": probes.distance.rank_,
        "target": target,
        "head_rule": tree.rule,
        "collapse_strings": True,
        "code": code,
        "tokens": [
            {"text": text, "type": kind, "start": int(s), "end": int(e)}
            for text, kind, s, e in zip(tokens.texts, tokens.types, tokens.start_char, tokens.end_char)
        ],
        "gold_heads": tree.heads.tolist(),
        "gold_depths": tree.depth.tolist(),
        "gold_distance": gold_distance(tree, target).tolist(),
        "predicted_distance": predicted.tolist(),
        "predicted_heads": spanning_tree(predicted).tolist(),
        "predicted_depths": depths.tolist(),
        "uuas": float(scored.uuas),
        "uuas_correct": int(scored.uuas_correct[0]),
        "uuas_total": int(scored.uuas_total[0]),
        "dspr": _num(float(scored.dspr[0])),
        "nspr": _num(float(depth_scored.nspr[0])),
        "root_correct": bool(depth_scored.root_correct[0]),
        "linear_baseline": {
            "uuas": float(linear.uuas),
            "dspr": _num(float(linear.dspr[0])),
            "nspr": _num(float(linear_depth.nspr[0])),
            "root_correct": bool(linear_depth.root_correct[0]),
        },
    }


def _print_prediction(obj: dict) -> None:
    tokens = obj["tokens"]
    gold, pred = obj["gold_heads"], obj["predicted_heads"]
    width = min(max((len(t["text"]) for t in tokens), default=4), 30)
    click.echo(
        f"# {obj['file']}: {obj['model']['name']}, distance probe hidden state {obj['hidden_state']['distance']}, "
        f"depth probe hidden state {obj['hidden_state']['depth']}, rank {obj['rank']}, {len(tokens)} tokens"
    )
    click.echo(
        f"{'#':>4}  {'token':<{width}}  {'gold head':>9}  {'predicted head':>14}  {'gold depth':>10}  "
        f"{'predicted depth':>15}"
    )
    for k, t in enumerate(tokens):
        text = t["text"].replace("\n", "\\n")
        text = text if len(text) <= width else text[: width - 1] + "\u2026"
        # The spanning tree is undirected; rooted at token 0, a gold edge can come out reversed.
        same = gold[k] == pred[k] or (pred[k] >= 0 and gold[pred[k]] == k)
        edge = " " if k == 0 else ("=" if same else "x")
        click.echo(
            f"{k:>4}  {text:<{width}}  {gold[k]:>9}  {pred[k]:>13}{edge}  {obj['gold_depths'][k]:>10}  "
            f"{obj['predicted_depths'][k]:>15.2f}"
        )
    click.echo("(= the edge to the predicted head is a gold edge, in either direction; x it is not)")
    line = obj["linear_baseline"]

    def fmt(x) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    click.echo(
        f"UUAS {obj['uuas']:.3f} ({obj['uuas_correct']} of {obj['uuas_total']} gold edges), DSpr {fmt(obj['dspr'])}, "
        f"NSpr {fmt(obj['nspr'])}, root {'correct' if obj['root_correct'] else 'wrong'}; linear baseline: UUAS "
        f"{line['uuas']:.3f}, DSpr {fmt(line['dspr'])}, NSpr {fmt(line['nspr'])}"
    )
