"""GPU benchmark: CAT-probing's pipeline against the bare forward pass on CUDA, for an encoder
and a 7B decoder, both architecture-exact with **random weights** (seeded; no code model's
weights exist offline, so these are speed and memory figures only, never any model's results):
- `codebert`: RobertaModel with CodeBERT's real config and tokenizer from `../shared/models`
  (12 layers, 768 wide, 12 heads), at 256 subwords;
- `decoder7b`: Qwen2.5-Coder-7B's shape (Qwen2, 28 layers, 3,584 wide, 28 query and 4 key-value
  heads, MLP 18,944, vocabulary 152,064, RoPE theta 1e6; sources and the tokenizer in
  `decoder_7b.py`), built directly on the GPU in the run's dtype, saved as safetensors and
  loaded back through `codeprobe.model.load_model`, at 256 and at 2,048 subwords. CAT-probing
  scores it under the causal mask (the default for decoders).

Both sides of a comparison read the same Python functions, with the same batch size, the same
input cut and the same dtype (bf16 by default), in batches sorted by length:
- bare: `model(..., output_attentions=True, output_hidden_states=True)` per batch, tokenisation
  done beforehand (not timed), synchronised at the end;
- pipeline: `methods.cat.cat_shard` shard by shard (parsing, distances, tokenisation, alignment, the
  forward pass with attention pooled in hooks, per-head and head-mean scores, shard files), then
  `methods.cat.cat_reduce` (scores, baselines, bootstrap intervals, tables). For the encoder the
  same pass also pools the token hidden states AST-Probe reuses (a run's default); for the
  decoder it does not (AST-Probe, the structural probes and the diagnostic classifiers off): at
  float32, 29 hidden states x 3,584 are 416 KB per token, tens of GB of store files for a
  few thousand functions, which would time the disk.
Inputs: at 256 subwords, `--n` standard-library functions (`prepare_data("stdlib", ...)`, those
longer cut at the limit); at 2,048 (`--long-subwords`), `--n-long` sources each made of
consecutive top-level functions and classes of one standard-library module, joined while they
stay within the limit, and kept from 3/4 of it (so read whole, none cut; at 2,048 with this
tokenizer and Python 3.11's library: 1,565 to 2,030 subwords, 1,870 on average). A warm-up
batch (shard) runs first on each side. On CUDA, peak GPU memory (`torch.cuda.max_memory_allocated`,
reset before each side; the weights included) is printed beside each throughput.

Prints, per model and input cut, snippets per second of each side, the mean subwords per
snippet, the peak GPU memory of each side and the ratio pipeline / bare throughput; the ratios
again last (goal for the encoder: >= 0.8).

Status: no accelerator was lent while this was written, so the `decoder7b` figures (7B shape,
bf16, one GPU) have **not been run**, nor the encoder's on a GPU. Only CPU smoke tests have run
(`--device cpu`, `--tiny`), which check that the script works, nothing more.

Usage (on a machine with a GPU; about 15 GB of disk for the 7B checkpoint, which is built, saved
and loaded again first; on a short device lease, fewer inputs, e.g. `--n 500 --n-long 16`):
    python benchmarks/bench_gpu.py [--model codebert|decoder7b|all] [--n 2000] [--n-long 32]
        [--batch-size 32] [--long-batch-size 4] [--dtype bfloat16] [--device cuda]
CPU smoke test (`--tiny`: every width of the decoder / 32, the same architecture; `--layers`:
its depth; a shorter long input):
    python benchmarks/bench_gpu.py --device cpu --dtype float32 --tiny --layers 2 --n 8 \\
        --n-long 2 --long-subwords 512 --batch-size 4 --long-batch-size 2
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import decoder_7b  # noqa: E402  (the 7B-shaped decoder)
from bench_mainjob import bare_batches  # noqa: E402  (the same bare forward inputs)

MODELS = ("codebert", "decoder7b")
SHORT_SUBWORDS = 256  # CAT-probing's default input cut (the paper's)
# Modules the long sources are cut from: long, top-level code, no platform-specific imports.
LONG_SOURCE_FILES = (
    "argparse.py",
    "inspect.py",
    "tokenize.py",
    "textwrap.py",
    "shlex.py",
    "heapq.py",
    "difflib.py",
    "pprint.py",
    "string.py",
    "fractions.py",
    "statistics.py",
    "calendar.py",
    "ftplib.py",
    "imaplib.py",
    "smtplib.py",
    "tarfile.py",
    "zipfile/__init__.py",
    "configparser.py",
    "gettext.py",
    "pdb.py",
)


@dataclass(frozen=True)
class Phase:
    """One comparison's figures.

    Attributes:
        model: the model's label; max_subwords: the input cut (special tokens included).
        mask: the CAT-score's cells ("causal" for a decoder, "full" for an encoder).
        n: snippets read; n_truncated: those cut at `max_subwords`; mean_subwords: their mean
            length as the model reads it.
        bare, pipeline: snippets per second of each side.
        bare_peak_gib, pipeline_peak_gib: peak GPU memory of each side in GiB (None on a CPU).
    """

    model: str
    max_subwords: int
    mask: str
    n: int
    n_truncated: int
    mean_subwords: float
    bare: float
    pipeline: float
    bare_peak_gib: float | None
    pipeline_peak_gib: float | None


def codebert_size_model(folder: Path, seed: int) -> Path:
    """CodeBERT's real config and tokenizer with random weights, saved as safetensors."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    from codeprobe.model.load_output import quiet_loading

    src = ROOT.parent / "shared" / "models" / "codebert-base-tokenizer"
    if not src.is_dir():
        sys.exit(f"needs {src} (the shared folder beside the repository)")
    config = RobertaConfig.from_pretrained(src)
    torch.manual_seed(seed)
    with quiet_loading():
        RobertaModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(src).save_pretrained(folder)
    return folder


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


def bare_throughput(loaded, codes: list[str], batch_size: int, max_subwords: int) -> tuple[float, float]:
    """(snippets per second of the bare forward pass, mean subwords per snippet); see the
    module docstring."""
    batches = bare_batches(loaded, codes, batch_size, max_subwords)

    def run(selected):
        with torch.inference_mode():
            for input_ids, mask in selected:
                loaded.model(
                    input_ids=input_ids.to(loaded.device),
                    attention_mask=mask.to(loaded.device),
                    output_attentions=True,
                    output_hidden_states=True,
                    return_dict=True,
                )
        synchronize(str(loaded.device))

    run(batches[-1:])  # warm-up
    t0 = time.perf_counter()
    run(batches)
    seconds = time.perf_counter() - t0
    return len(codes) / seconds, sum(int(mask.sum()) for _, mask in batches) / len(codes)


def long_sources(tok, budget: int, n: int) -> list[str]:
    """Up to `n` Python sources of at most `budget` subwords (no special tokens), each the
    consecutive top-level functions and classes of one of `LONG_SOURCE_FILES`, joined while the
    source stays within `budget`; a run shorter than 3/4 of `budget` is dropped, as is a
    definition longer than it alone."""
    root = Path(sysconfig.get_paths()["stdlib"])

    def length(parts: list[str]) -> int:
        return len(tok("\n\n\n".join(parts) + "\n", add_special_tokens=False)["input_ids"])

    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    sources: list[str] = []
    for name in LONG_SOURCE_FILES:
        path = root / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        runs: list[list[str]] = [[]]
        for node in ast.parse(text).body:
            if not isinstance(node, kinds) or node.decorator_list:
                continue  # a decorator's lines lie outside the node's own segment
            segment = ast.get_source_segment(text, node)
            if length([*runs[-1], segment]) <= budget:
                runs[-1].append(segment)
            else:
                runs.append([segment] if length([segment]) <= budget else [])
        sources += ["\n\n\n".join(run) + "\n" for run in runs if run and length(run) >= 3 * budget // 4]
        if len(sources) >= n:
            return sources[:n]
    return sources


def long_data(loaded, budget: int, n: int, seed: int, out: Path) -> str:
    """A data folder (`prepare_data` over a JSON-lines file) of `long_sources` for `loaded`'s
    tokenizer, within `budget` subwords with its framing tokens."""
    from codeprobe.pipeline.data import prepare_data

    inner = budget - len(loaded.prefix_ids) - len(loaded.suffix_ids)
    sources = long_sources(loaded.tokenizer, inner, n)
    if not sources:
        sys.exit(f"no standard-library source of {inner} subwords or fewer was found")
    rows = [json.dumps({"id": f"long-{k}", "language": "python", "code": code}) for k, code in enumerate(sources)]
    (out / "long.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return prepare_data(str(out / "long.jsonl"), "python", len(sources), seed, str(out / "data-long"), key="gpu-long")


def compare(label: str, model_dir: Path, data_dir: str, cfg, out: Path) -> Phase:
    """Bare forward pass, then the pipeline, over the snippets of `data_dir` with `cfg`'s batch
    size, input cut, device and dtype (see the module docstring)."""
    from codeprobe.pipeline.data import read_snippets
    from codeprobe.pipeline.methods.cat.steps import cat_reduce, cat_shard, n_truncated, step_settings
    from codeprobe.pipeline.steps import loaded_model

    device, dtype = cfg.extraction.device, cfg.extraction.dtype
    batch_size, max_subwords = cfg.extraction.batch_size, cfg.cat.max_subwords
    shard_size = cfg.extraction.shard_size
    loaded = loaded_model(str(model_dir), device, dtype)  # the one the pipeline's steps use
    snippets = read_snippets(data_dir)
    settings = step_settings(cfg, "python", kind=loaded.info.kind)
    work = out / f"{label}-{max_subwords}"

    reset_peak(device)
    bare, mean_subwords = bare_throughput(loaded, [s.code for s in snippets], batch_size, max_subwords)
    bare_peak = peak_gib(device)

    reset_peak(device)
    cat_shard(str(model_dir), "python", data_dir, 0, batch_size, settings, str(work / "warm.npz"), f"{label}-warm")
    synchronize(device)
    t0 = time.perf_counter()
    paths = [
        cat_shard(
            str(model_dir),
            "python",
            data_dir,
            k,
            shard_size,
            settings,
            str(work / "cat" / f"shard-{k:04d}.npz"),
            f"{label}-{k}",
        )
        for k in range(-(-len(snippets) // shard_size))
    ]
    cat_reduce(str(model_dir), "python", paths, settings, str(work / "cat"), f"{label}-reduce")
    synchronize(device)
    pipeline = len(snippets) / (time.perf_counter() - t0)
    phase = Phase(
        label,
        max_subwords,
        settings["cat"]["mask"],
        len(snippets),
        sum(n_truncated(path) for path in paths),
        mean_subwords,
        bare,
        pipeline,
        bare_peak,
        peak_gib(device),
    )
    print_phase(phase)
    return phase


def print_phase(p: Phase) -> None:
    def gib(x: float | None) -> str:
        return "n/a (CPU)" if x is None else f"{x:.2f} GiB"

    print(
        f"{p.model} at {p.max_subwords} subwords: {p.n} snippets ({p.n_truncated} cut), "
        f"{p.mean_subwords:.0f} subwords each on average, CAT mask {p.mask}\n"
        f"  bare forward (attentions + hidden states): {p.bare:8.2f} snippets/s, peak GPU memory {gib(p.bare_peak_gib)}\n"
        f"  codeprobe CAT-probing pipeline:            {p.pipeline:8.2f} snippets/s, "
        f"peak GPU memory {gib(p.pipeline_peak_gib)}\n"
        f"  ratio pipeline / bare throughput: {p.pipeline / p.bare:.2f}",
        flush=True,
    )


def describe(label: str, loaded, args) -> None:
    """One line on the model as loaded: architecture, size, dtype, device, weights' memory."""
    info = loaded.info
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    memory = f", weights {torch.cuda.memory_allocated() / 2**30:.2f} GiB" if args.device.startswith("cuda") else ""
    n_params = sum(p.numel() for p in loaded.model.parameters())
    print(
        f"model {label}: {info.architecture} ({info.kind}), random weights, {info.n_layers} layers, "
        f"{info.n_heads} heads, {info.hidden_size} wide, {n_params / 1e9:.3f} B parameters loaded, "
        f"{args.dtype} on {where}{memory}",
        flush=True,
    )


def run_codebert(args, data_dir: str, out: Path) -> list[Phase]:
    from codeprobe.pipeline.config import RunConfig
    from codeprobe.pipeline.steps import loaded_model

    model_dir = codebert_size_model(out / "codebert-size-random", args.seed)
    cfg = RunConfig(batch_size=args.batch_size, device=args.device, dtype=args.dtype, models=(str(model_dir),))
    describe("codebert", loaded_model(str(model_dir), args.device, args.dtype), args)
    return [compare("codebert", model_dir, data_dir, cfg, out)]


def run_decoder(args, data_dir: str, out: Path) -> list[Phase]:
    from codeprobe.model.loading import resolve_dtype
    from codeprobe.pipeline.config import RunConfig
    from codeprobe.pipeline.steps import loaded_model

    t0 = time.perf_counter()
    model_dir = decoder_7b.build(
        out / "decoder7b-random",
        seed=args.seed,
        device=args.device,
        dtype=resolve_dtype(args.dtype),
        n_layers=args.layers,
        tiny=args.tiny,
    )
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    loaded = loaded_model(str(model_dir), args.device, args.dtype)
    print(f"decoder7b: built and saved in {built:.0f} s, loaded in {time.perf_counter() - t0:.0f} s", flush=True)
    describe("decoder7b", loaded, args)

    def config(batch_size: int, max_subwords: int):
        return RunConfig(
            models=(str(model_dir),),
            extraction={"batch_size": batch_size, "device": args.device, "dtype": args.dtype},
            cat={"max_subwords": max_subwords},
            astprobe=None,  # no hidden-state store: see the module docstring
            structural=None,
            diagnostic=None,
        )

    short = compare("decoder7b", model_dir, data_dir, config(args.batch_size, SHORT_SUBWORDS), out)
    long_dir = long_data(loaded, args.long_subwords, args.n_long, args.seed, out)
    long = compare("decoder7b", model_dir, long_dir, config(args.long_batch_size, args.long_subwords), out)
    return [short, long]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="all", choices=[*MODELS, "all"])
    ap.add_argument("--n", type=int, default=2000, help="standard-library functions read at 256 subwords")
    ap.add_argument("--n-long", type=int, default=32, help="long sources read at --long-subwords (decoder)")
    ap.add_argument("--long-subwords", type=int, default=2048, help="the decoder's long input cut")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--long-batch-size", type=int, default=4, help="batch size at --long-subwords")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--layers", type=int, default=None, help="the decoder's depth instead of 28")
    ap.add_argument("--tiny", action="store_true", help="every width of the decoder / 32 (a CPU smoke test)")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark has not run (it measures the GPU path)")

    from codeprobe.pipeline.data import prepare_data

    chosen = MODELS if args.model == "all" else (args.model,)
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        data_dir = prepare_data("stdlib", "python", args.n, args.seed, str(out / "data"), key="gpu")
        if "codebert" in chosen:
            phases += run_codebert(args, data_dir, out)
        if "decoder7b" in chosen:
            phases += run_decoder(args, data_dir, out)
    shape = " (--tiny: widths / 32)" if args.tiny else ""
    depth = f" ({args.layers} layers)" if args.layers is not None else ""
    print(f"\nratio pipeline / bare throughput (goal for the encoder >= 0.8){shape}{depth}:")
    for p in phases:
        print(f"  {p.model:9} at {p.max_subwords:>5} subwords: {p.pipeline / p.bare:.2f}")


if __name__ == "__main__":
    main()
