"""One typed config describes one experiment (a run): what to probe, on what, and how.

It is composed of the methods' own parameter objects: `cat` holds `CATProbe`'s arguments,
`astprobe` AST-Probe's, `training` is the probes' `TrainConfig`, and `data` and `extraction` say
what is read and how the model runs. It is validated by type when it is read (pydantic): an
unknown key, a wrong type, an out-of-range value, an empty list of models or malformed JSON is a
`ConfigError` naming the key (or the file and position) and what is allowed, before any work.

It is written to `RUN/config.json` and read back by `codeprobe report`, so a run folder says how
it was made. The flat keys of configs written before the sections existed (`cat_types`,
`max_epochs`, `probe_batch_size`, `layers`, ...) are read into their sections with the same
meaning (`LEGACY_KEYS`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from codeprobe.errors import InputError
from codeprobe.probes.astprobe.train_config import TrainConfig
from codeprobe.probes.heads.baselines import DEFAULT_MAX_OFFSET
from codeprobe.probes.heads.score import DEFAULT_KS
from codeprobe.syntax.relations import DEFAULT_MIN_COUNT

DEFAULT_MODEL = "default"  # the packaged all-MiniLM-L6-v2 (a text model, not a code model)


class ConfigError(InputError):
    """A run config that cannot be used: names the key (or the file and position) and what is
    allowed."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    """What is read.

    Attributes:
        n_snippets: snippets sampled per (language, dataset), before the train/valid/test split
            (0: every usable snippet).
    """

    n_snippets: int = Field(1400, ge=0)


class ExtractionConfig(_Section):
    """How the model runs.

    Attributes:
        batch_size: snippets per forward pass.
        device: "cpu", "cuda", "cuda:N", or None (automatic); the probes train there too.
        dtype: the model's weights: "float32", "bfloat16" or "float16" (on a GPU: half the memory
            and the time; AST-Probe's hidden-state cache is float16 either way).
        shard_size: snippets per shard of CAT work (the unit of caching and resuming).
        device_map: split a model larger than one GPU across the visible GPUs (accelerate's
            "auto", "balanced", "balanced_low_0" or "sequential"); None: the whole model on
            `device`. Not with `device`. Each process (each Dask worker) loads it once.
        max_memory: with `device_map`, the most each device may hold: {"0": "20GiB", "1":
            "40GiB", "cpu": "60GiB"} (GPU indices as strings).
    """

    batch_size: int = Field(16, ge=1)
    device: str | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    shard_size: int = Field(250, ge=1)
    device_map: Literal["auto", "balanced", "balanced_low_0", "sequential"] | None = None
    max_memory: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one_placement(self) -> ExtractionConfig:
        if self.device_map is not None and self.device is not None:
            raise ValueError(f"give device ({self.device!r}) or device_map ({self.device_map!r}), not both")
        if self.max_memory is not None and self.device_map is None:
            raise ValueError("max_memory applies to a model split with device_map; set device_map too")
        return self

    def placement(self) -> dict[str, Any]:
        """`codeprobe.pipeline.steps.loaded_model`'s placement arguments."""
        return {"device_map": self.device_map, "max_memory": self.max_memory}


class CATConfig(_Section):
    """CAT-probing's arguments (`codeprobe.probes.cat.CATProbe`) as a run sets them; the run
    adds `random_state` (the run's seed) and `batch_size` (extraction's).

    Attributes:
        types: "paper" | "topk" | "all" | "auto" (a run's own: paper where the spec has a list
            for the language, else all).
        distance: "uast" (the paper's) or "ast".
        quantile: the CAT quantile q.
        top_k: k of types "topk".
        max_subwords: the model input limit, special tokens included (the paper's 256).
        model_input: "source" (default) or "code_tokens" (docs/paper-switches.md).
        head_pooling: "mean" (default) or "max" over a layer's heads.
        mask: the cells scored: "auto" (causal for a decoder, full otherwise), "causal" (the
            pairs key j <= query i) or "full" (all n^2, the paper's); docs/cat.md.
        per_head: also score every attention head (the report's layer x head map; only with
            head_pooling "mean" and types "paper"/"all").
        allow_parse_errors: score snippets whose tree has ERROR/MISSING nodes.
    """

    types: Literal["auto", "paper", "topk", "all"] = "auto"
    distance: Literal["uast", "ast"] = "uast"
    quantile: float = Field(0.75, gt=0.0, lt=1.0)
    top_k: int = Field(8, ge=1)
    max_subwords: int = Field(256, ge=8)
    model_input: Literal["source", "code_tokens"] = "source"
    head_pooling: Literal["mean", "max"] = "mean"
    mask: Literal["auto", "causal", "full"] = "auto"
    per_head: bool = True
    allow_parse_errors: bool = False


class ASTProbeConfig(_Section):
    """AST-Probe's settings (arXiv:2206.11719).

    Attributes:
        rank: probe rank of the sweep over hidden states.
        ranks: the rank sweep at the hidden state with the best validation F1 (empty: none).
        hidden_states: hidden-state indices to probe (0 = embeddings; empty: all). The
            embeddings are always probed too, as the embedding baseline.
        random_baseline: also probe the same architecture with random weights.
        probe_seeds: train every probe with this many seeds (seed, seed + 1, ...); the report
            gives the mean over seeds and their spread.
        model_input: "source" (default) or "code_tokens".
        remove_docstrings, drop_line_continuations: AST-Probe's original preprocessing.
        label_control: give the label accuracies (c, u) a control task (Hewitt & Liang,
            arXiv:1909.03368) at the hidden state chosen on validation: one more fit, on control
            labels, and the selectivity of c and u (see docs/astprobe-results.md).
    """

    rank: int = Field(128, ge=1)
    ranks: tuple[int, ...] = (8, 32, 128)
    hidden_states: tuple[int, ...] = ()
    random_baseline: bool = True
    probe_seeds: int = Field(1, ge=1)
    model_input: Literal["source", "code_tokens"] = "source"
    remove_docstrings: bool = False
    drop_line_continuations: bool = False
    label_control: bool = True

    @field_validator("ranks", "hidden_states")
    @classmethod
    def _non_negative(cls, values: tuple[int, ...], info) -> tuple[int, ...]:
        low = 1 if info.field_name == "ranks" else 0
        if any(v < low for v in values):
            raise ValueError(f"every entry must be >= {low}")
        return values


class HeadsConfig(_Section):
    """Attention-head relations' settings (Clark et al., arXiv:1906.04341; CodeSyntax, Shen et
    al., arXiv:2210.14473; `codeprobe.probes.heads`).

    Attributes:
        ks: the k of top-k accuracy.
        dependent: which token of a dependent span the report's head->dep headline reads
            ("first", "any", "last"); summary.json holds all three.
        min_count: relations with fewer edges in the data (all splits) are left out, as
            CodeSyntax and Chen et al. drop rare relations.
        max_offset: the offset baselines try offsets +-1..max_offset.
        keywords: the offset + keyword baseline's rules use the grammar's keywords
            (`codeprobe.syntax.keywords`); false: the offsets alone.
        random_weights: also score the same architecture with random weights (a forward pass
            over the validation and test snippets), a baseline beside the rules and random
            attention.
        max_subwords, allow_parse_errors: as CAT-probing's; where they equal CAT-probing's
            (and its heads are pooled by mean), its forward pass is shared.
    """

    ks: tuple[int, ...] = DEFAULT_KS
    dependent: Literal["first", "any", "last"] = "first"
    min_count: int = Field(DEFAULT_MIN_COUNT, ge=1)
    max_offset: int = Field(DEFAULT_MAX_OFFSET, ge=1)
    keywords: bool = True
    random_weights: bool = True
    max_subwords: int = Field(256, ge=8)
    allow_parse_errors: bool = False

    @field_validator("ks")
    @classmethod
    def _ks(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if not values or any(k < 1 for k in values) or list(values) != sorted(set(values)):
            raise ValueError("ks must be increasing positive integers")
        return values


class DiagnosticConfig(_Section):
    """The diagnostic classifiers' settings (`codeprobe.probes.diagnostic`: softmax regression
    per hidden state with control tasks, Hewitt & Liang, arXiv:1909.03368, and MDL, Voita &
    Titov, arXiv:2003.12298), trained on AST-Probe's cached hidden states (docs/diagnostic.md).

    Attributes:
        tasks: the label tasks (`codeprobe.probes.diagnostic.LABEL_TASKS`): "parent_type" (AST
            node tagging) and "depth_bucket" (the token's depth in the token tree, bucketed).
        hidden_states: the hidden states classified, all at once (0 = embeddings, always in:
            it is the embedding baseline); empty: those AST-Probe probes (all by default), so
            its cache holds them and no forward pass is added.
        min_count: a label needs this many training tokens for a class of its own (rarer ones
            share `<other>`).
        control: also train each task's control task (a random label per token type) and
            report selectivity = task - control accuracy.
        mdl: where the online codelength (MDL) is computed, for the task and its control:
            "selected" (the hidden state chosen on validation), "all" (every hidden state
            classified) or "none".
        random_weights: also classify the random-weights model's hidden states (AST-Probe's
            random-baseline cache where it holds them; else a forward pass over the data).
        lr, max_epochs, patience: each classifier's training (`StructuralTrainConfig`, the
            structural probes' recipe otherwise: Adam, batches of 20 snippets, plateau
            schedule). Softmax regression from zero needs more than the reference's 40 epochs
            at its lr 0.001; at 0.01 it converges in about a dozen on 300 snippets, fewer on
            more (docs/diagnostic.md).
    """

    tasks: tuple[Literal["parent_type", "depth_bucket"], ...] = ("parent_type", "depth_bucket")
    hidden_states: tuple[int, ...] = ()
    min_count: int = Field(5, ge=1)
    control: bool = True
    mdl: Literal["selected", "all", "none"] = "selected"
    random_weights: bool = False
    lr: float = Field(0.01, gt=0)
    max_epochs: int = Field(10, ge=1)
    patience: int = Field(2, ge=1)

    @field_validator("tasks", "hidden_states")
    @classmethod
    def _distinct(cls, values: tuple, info) -> tuple:
        if info.field_name == "tasks" and not values:
            raise ValueError("name at least one task")
        if len(set(values)) != len(values):
            raise ValueError("every entry must appear once")
        if info.field_name == "hidden_states" and any(v < 0 for v in values):
            raise ValueError("every entry must be >= 0")
        return values


class StructuralConfig(_Section):
    """The structural probes' settings in a run (Hewitt & Manning, NAACL 2019, N19-1419;
    `codeprobe.probes.structural`, docs/structural.md "In a run"). They are trained on
    AST-Probe's hidden-state cache (its tokens and preprocessing: no forward pass of their own
    when AST-Probe's cache holds their hidden states), all hidden states at once (stacked).

    Attributes:
        probes: which probes run: "distance" (UUAS, DSpr) and "depth" (NSpr, root accuracy).
        hidden_states: hidden-state indices to probe (0 = embeddings; empty: all). The
            embeddings are always probed too, as the embedding baseline.
        rank: B's columns (the reference's square B is the model's width: slower, a setting).
        target: the distance probe's gold: "token_tree" (path lengths in the token tree) or
            "ast" (CAT-probing's leaf-to-leaf AST distance).
        lr, batch_size, max_epochs, patience, batching: `StructuralTrainConfig`'s (the other
            optimisation settings are the reference's); "by_length" batches snippets of similar
            lengths (less padding: about three times faster on the standard library).
        control: where the control-tree probes train (Hewitt & Liang, arXiv:1909.03368;
            `codeprobe.probes.structural.control`): "best" (each probe's hidden state chosen on
            validation), "all", or "none". Selectivity = task - control there.
        random_weights: where the same architecture with random weights is probed: "best",
            "all" or "none" (its hidden states are AST-Probe's random-weights cache's when it
            holds them).
    """

    probes: tuple[Literal["distance", "depth"], ...] = ("distance", "depth")
    hidden_states: tuple[int, ...] = ()
    rank: int = Field(32, ge=1)
    target: Literal["token_tree", "ast"] = "token_tree"
    lr: float = Field(0.004, gt=0.0)
    batch_size: int = Field(20, ge=1)
    max_epochs: int = Field(6, ge=1)
    patience: int = Field(2, ge=1)
    batching: Literal["random", "by_length"] = "by_length"
    control: Literal["best", "all", "none"] = "best"
    random_weights: Literal["best", "all", "none"] = "best"

    @field_validator("probes")
    @classmethod
    def _probes(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if not values or len(set(values)) != len(values):
            raise ValueError("probes must name each of distance, depth at most once, and at least one")
        return values

    @field_validator("hidden_states")
    @classmethod
    def _states(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if any(v < 0 for v in values):
            raise ValueError("every entry must be >= 0")
        return values


# Flat keys of configs written before the sections, by (section, field); a section of None is a
# top-level key. `cat`/`astprobe` true or false (run the method or not) are read as before.
LEGACY_KEYS: dict[str, tuple[str, str]] = {
    "n_snippets": ("data", "n_snippets"),
    "shard_size": ("extraction", "shard_size"),
    "batch_size": ("extraction", "batch_size"),
    "device": ("extraction", "device"),
    "dtype": ("extraction", "dtype"),
    "cat_types": ("cat", "types"),
    "cat_distance": ("cat", "distance"),
    "quantile": ("cat", "quantile"),
    "cat_max_subwords": ("cat", "max_subwords"),
    "cat_model_input": ("cat", "model_input"),
    "cat_head_pooling": ("cat", "head_pooling"),
    "cat_per_head": ("cat", "per_head"),
    "rank": ("astprobe", "rank"),
    "ranks": ("astprobe", "ranks"),
    "layers": ("astprobe", "hidden_states"),
    "random_baseline": ("astprobe", "random_baseline"),
    "probe_seeds": ("astprobe", "probe_seeds"),
    "astprobe_model_input": ("astprobe", "model_input"),
    "remove_docstrings": ("astprobe", "remove_docstrings"),
    "drop_line_continuations": ("astprobe", "drop_line_continuations"),
    "max_epochs": ("training", "max_epochs"),
    "patience": ("training", "patience"),
    "min_improvement": ("training", "min_improvement"),
    "lr": ("training", "lr"),
    "probe_batch_size": ("training", "batch_size"),
    "orthogonality": ("training", "orthogonality"),
    "lr_factor": ("training", "lr_factor"),
    "probe_init": ("training", "init"),
}
_METHODS = ("cat", "astprobe", "heads", "structural", "diagnostic")


def _model_spec(entry: Any) -> Any:
    """A `models` entry as a spec string: `{"repo": "org/model", "revisions": [...]}` names the
    repository's revisions, `"org/model@rev1,rev2"` (`codeprobe.model.checkpoints`); anything
    else is left for validation."""
    if not isinstance(entry, dict):
        return entry
    if set(entry) != {"repo", "revisions"}:
        raise ValueError(f"models: an entry given as an object has the keys repo and revisions, not {sorted(entry)}")
    repo, revisions = entry["repo"], entry["revisions"]
    if not isinstance(repo, str) or "@" in repo or not repo.strip():
        raise ValueError(f"models: repo must be a Hugging Face id, got {repo!r}")
    if (
        not isinstance(revisions, list)
        or not revisions
        or not all(isinstance(r, str) and r.strip() and not {",", "@"} & set(r) for r in revisions)
    ):
        raise ValueError(f"models: revisions must be a non-empty list of revision names, got {revisions!r}")
    return f"{repo.strip()}@" + ",".join(r.strip() for r in revisions)


class RunConfig(BaseModel):
    """A probing run over every (model, language, dataset) combination.

    Attributes:
        models: "default" (the packaged text model), a local model folder, a folder or glob of
            training checkpoints, a Hugging Face id present in the local cache, or its
            revisions as a checkpoint series: `"org/model@step1000,step2000"`, or in a file
            `{"repo": "org/model", "revisions": ["step1000", "step2000"]}` (read as the former).
        languages: languages to probe (each dataset is read in each language it has a usable
            snippet in; the other pairs are left out, with their reasons in summary.json's
            `not_read`, and a language no dataset has fails the run before any work).
        datasets: dataset specs the loaders accept: "stdlib", a .jsonl/.json/.txt file, a
            directory of source files.
        seed: seeds sampling, splitting, baselines and probe initialisation.
        data, extraction: see `DataConfig`, `ExtractionConfig`.
        cat, astprobe, heads, structural, diagnostic: each method's settings, or None not to run
            it (JSON: null or false; true: the defaults).
        training: the probes' optimisation (`TrainConfig`; the paper's budget is
            `TrainConfig.paper()`; its `device` follows `extraction.device`).
        explorer_snippets: test snippets sampled for the report's snippet explorer (0: none).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: tuple[str, ...] = Field((DEFAULT_MODEL,), min_length=1)
    languages: tuple[str, ...] = Field(("python",), min_length=1)
    datasets: tuple[str, ...] = Field(("stdlib",), min_length=1)
    seed: int = 0
    data: DataConfig = DataConfig()
    extraction: ExtractionConfig = ExtractionConfig()
    cat: CATConfig | None = CATConfig()
    astprobe: ASTProbeConfig | None = ASTProbeConfig()
    heads: HeadsConfig | None = HeadsConfig()
    structural: StructuralConfig | None = StructuralConfig()
    diagnostic: DiagnosticConfig | None = DiagnosticConfig()
    training: TrainConfig = TrainConfig()
    explorer_snippets: int = Field(20, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        """Legacy flat keys into their sections; `cat`/`astprobe` true/false to a section/None;
        the probes' device is the run's (`extraction.device`)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("models"), (list, tuple)):
            data["models"] = [_model_spec(m) for m in data["models"]]
        if data.get("extra") == {}:
            del data["extra"]  # written, always empty, by configs before the sections
        sections: dict[str, dict[str, Any]] = {}
        for old, (section, name) in LEGACY_KEYS.items():
            if old in data:
                sections.setdefault(section, {})[name] = data.pop(old)
        for method in _METHODS:
            if data.get(method) is True:
                data[method] = {}
            elif data.get(method) is False:
                data[method] = None
        for section, values in sections.items():
            current = data.get(section)
            if current is None and section in _METHODS and section in data:
                continue  # the method is off: its settings are moot, as before
            current = {} if current is None else current
            if isinstance(current, BaseModel):
                current = current.model_dump()
            elif not isinstance(current, dict):
                current = _dataclass_dict(current)
            both = sorted(set(values) & set(current))
            if both:
                raise ValueError(f"{section}.{both[0]} is given twice (as a flat key and in {section!r})")
            data[section] = {**current, **values}
        training = data.get("training")
        if isinstance(training, dict) and {"device", "threads"} & set(training):
            raise ValueError("training.device and training.threads are the run's: set extraction.device")
        return data

    def train_config(self) -> TrainConfig:
        """The probes' `TrainConfig`, on the run's device."""
        from dataclasses import replace

        return replace(self.training, device=self.extraction.device or "cpu")

    def with_changes(self, **changes: Any) -> RunConfig:
        """A copy with `changes` (top-level or legacy flat keys), validated."""
        return parse_config({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON values (sections as dicts, tuples as lists)."""
        out = self.model_dump(mode="json")
        out["training"].pop("device", None)
        out["training"].pop("threads", None)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def read(cls, path: str | Path) -> RunConfig:
        """Read and validate a config JSON file.

        Raises:
            ConfigError: the file cannot be read, is not JSON (names the line and column), or
                holds a config that does not validate (names the key).
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read config {path}: {err}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}:{err.lineno}:{err.colno}: not valid JSON: {err.msg}") from None
        return parse_config(data, source=str(path))


def parse_config(data: Any, source: str = "run config") -> RunConfig:
    """Validate `data` (a dict as in config.json, legacy flat keys included) as a RunConfig.

    Raises:
        ConfigError: one message naming each bad key and what is allowed.
    """
    if isinstance(data, RunConfig):
        return data
    if data is None:
        return RunConfig()
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a config is a JSON object of settings, not {type(data).__name__}")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: " + "; ".join(_describe(e) for e in err.errors())) from None


def _describe(error: dict[str, Any]) -> str:
    """One pydantic error as "key: what is wrong (got VALUE)"."""
    loc = ".".join(str(part) for part in error["loc"] if not isinstance(part, int)) or "config"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"unknown key {loc!r} (allowed: {', '.join(_allowed(error['loc'][:-1]))})"
    got = error.get("input")
    shown = (
        "" if isinstance(got, (dict, BaseModel)) or got is None and error["type"] == "missing" else f" (got {got!r})"
    )
    return f"{loc}: {message}{shown}"


def _allowed(section: tuple) -> list[str]:
    """The keys allowed at `section` (a location in the config)."""
    from dataclasses import fields, is_dataclass
    from typing import get_args

    model: Any = RunConfig
    for part in section:
        annotation = model.model_fields[part].annotation
        model = next((a for a in (annotation, *get_args(annotation)) if isinstance(a, type)), None)
    if model is RunConfig:
        return [*RunConfig.model_fields, "or the flat keys of older configs (LEGACY_KEYS)"]
    if is_dataclass(model):
        return [f.name for f in fields(model) if f.name not in ("device", "threads")]
    return list(model.model_fields)


def _dataclass_dict(value: Any) -> dict[str, Any]:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value):
        return asdict(value)
    raise ValueError(f"expected an object of settings, not {type(value).__name__}")
