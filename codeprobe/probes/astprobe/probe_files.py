"""A fitted `ASTProbe` on disk: a directory holding `probe.safetensors` (the projection B and
the label vectors V_c, V_u) and `probe.json` (settings, vocabularies, model and grammar
provenance, training history), each written atomically with its integrity record
(`codeprobe.files.check`).

`probe.json` format 2 records the probed hidden state as `hidden_state`; format 1 (codeprobe
before the rename) recorded it as `layer`, and `read_probe` still reads it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors.torch import load_file, save_file

from codeprobe.errors import ModelLoadError
from codeprobe.files import write_atomic, write_json
from codeprobe.model import LoadedModel
from codeprobe.probes.astprobe.probe import ProbeModule
from codeprobe.syntax import grammar_info

if TYPE_CHECKING:
    from codeprobe.probes.astprobe.estimator import ASTProbe

SETTINGS_FILE = "probe.json"
SETTINGS_FORMAT = 2  # 1: the hidden state recorded as `layer`
WEIGHTS_FILE = "probe.safetensors"


def probe_settings(probe: ASTProbe) -> dict[str, Any]:
    """What `probe.json` records of a fitted probe."""
    module, (c_vocab, u_vocab) = probe.module_, probe.vocabs_
    language = probe.language_
    grammar = grammar_info(language)
    result = probe.fit_result_
    return {
        "format": SETTINGS_FORMAT,
        "model": None if isinstance(probe.model_, LoadedModel) else probe.model_,
        "model_info": probe.model_info_,
        "hidden_state": probe.hidden_state,
        "rank": probe.rank,
        "language": language,
        "languages": list(module.vectors_c),
        "vocabularies": {language: {"c": list(c_vocab.labels), "u": list(u_vocab.labels)}},
        "grammars": {language: {"package": grammar.package, "version": grammar.package_version}},
        "random_state": probe.random_state,
        "remove_docstrings": probe.remove_docstrings,
        "drop_line_continuations": probe.drop_line_continuations,
        "model_input": probe.model_input,
        "config": asdict(probe.config),
        "training": None
        if result is None
        else {
            "best_epoch": result.best_epoch,
            "hit_max_epochs": result.hit_max_epochs,
            "best_valid_loss": result.best_valid_loss,
            "rollbacks": list(result.rollbacks),
            "history": [asdict(r) for r in result.history],
        },
    }


def write_probe(path: str | os.PathLike, module: ProbeModule, settings: dict[str, Any]) -> Path:
    """Write `module`'s tensors and `settings` to directory `path`, each file atomically (a
    reader never sees half a file)."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    write_atomic(path / WEIGHTS_FILE, lambda tmp: save_file(tensors, str(tmp)), record=True)
    write_json(path / SETTINGS_FILE, settings, sort_keys=False, record=True)
    return path


def read_probe(path: str | os.PathLike) -> tuple[dict[str, Any], ProbeModule]:
    """(settings, module) of the probe `write_probe` wrote to `path` (the module on the CPU);
    the settings of a format-1 probe.json with its `layer` read as `hidden_state`.

    Raises:
        ModelLoadError: unreadable files, or a grammar version other than the one installed
            (the probe's labels would not match).
    """
    path = Path(path)
    try:
        settings = json.loads((path / SETTINGS_FILE).read_text(encoding="utf-8"))
        tensors = load_file(str(path / WEIGHTS_FILE))
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot load a probe from {path}: {err}") from err
    if "hidden_state" not in settings and "layer" in settings:  # format 1
        settings["hidden_state"] = settings.pop("layer")
    language = settings["language"]
    installed = grammar_info(language).package_version
    saved = settings["grammars"][language]["version"]
    if installed != saved:
        raise ModelLoadError(
            f"probe trained with {settings['grammars'][language]['package']} {saved}, "
            f"but {installed} is installed: its labels would not match"
        )
    sizes = {}
    for lang in settings["languages"]:
        sizes[lang] = (tensors[f"vectors_c.{lang}"].shape[1], tensors[f"vectors_u.{lang}"].shape[1])
    module = ProbeModule(tensors["proj"].shape[0], tensors["proj"].shape[1], sizes)
    module.load_state_dict(tensors)  # names: proj, vectors_c.<language>, vectors_u.<language>
    return settings, module
