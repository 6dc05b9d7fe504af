"""GPU benchmark: CAT-probing's pipeline against the bare forward pass on CUDA, with an
architecture-exact CodeBERT-size model (RobertaModel, 12 layers, 768 wide, 12 heads: CodeBERT's
real config and tokenizer from `../shared/models`, **random weights**, seeded; no code model's
weights exist offline, so these are speed figures only, never CodeBERT's results).

Both sides read the same standard-library functions, with the same batch size, the same
256-subword input cut and the same dtype (bf16 by default), in batches sorted by length:
- bare: `model(..., output_attentions=True, output_hidden_states=True)` per batch, tokenisation
  done beforehand (not timed), synchronised at the end;
- pipeline: `methods.cat.cat_shard` shard by shard (parsing, distances, tokenisation, alignment, the
  forward pass with attention pooled in hooks, the token hidden states AST-Probe reuses, shard files),
  then `methods.cat.cat_reduce` (scores, baselines, bootstrap intervals, tables).
A warm-up batch runs first on each side. Prints snippets per second of each and the ratio
pipeline / bare throughput last (goal: >= 0.8).

Usage (on a machine with a GPU; `--device cpu` only checks that the script runs):
    python benchmarks/bench_gpu.py [--n 2000] [--batch-size 32] [--dtype bfloat16] [--device cuda]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mainjob import bare_batches  # noqa: E402  (the same bare forward inputs)


def codebert_size_model(folder: Path, seed: int) -> Path:
    """CodeBERT's real config and tokenizer with random weights, saved as safetensors."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    src = ROOT.parent / "shared" / "models" / "codebert-base-tokenizer"
    if not src.is_dir():
        sys.exit(f"needs {src} (the shared folder beside the repository)")
    config = RobertaConfig.from_pretrained(src)
    torch.manual_seed(seed)
    RobertaModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(src).save_pretrained(folder)
    return folder


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bare_throughput(loaded, codes: list[str], batch_size: int, max_subwords: int) -> float:
    """Snippets per second of the bare forward pass (see the module docstring)."""
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
    return len(codes) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark has not run (it measures the GPU path)")

    from codeprobe.pipeline.config import RunConfig
    from codeprobe.pipeline.data import prepare_data, read_snippets
    from codeprobe.pipeline.methods.cat.steps import cat_reduce, cat_shard, step_settings
    from codeprobe.pipeline.steps import loaded_model

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        model_dir = codebert_size_model(out / "codebert-size-random", args.seed)
        data_dir = prepare_data("stdlib", "python", args.n, args.seed, str(out / "data"), key="gpu")
        snippets = read_snippets(data_dir)
        cfg = RunConfig(batch_size=args.batch_size, device=args.device, dtype=args.dtype, models=(str(model_dir),))
        settings = step_settings(cfg, "python")
        loaded = loaded_model(str(model_dir), args.device, args.dtype)  # the one the pipeline's steps use
        max_subwords, shard_size = cfg.cat.max_subwords, cfg.extraction.shard_size
        info = loaded.info
        print(
            f"model: RobertaModel, CodeBERT's config with random weights ({info.n_layers} layers, "
            f"{info.hidden_size} wide), {args.dtype} on "
            f"{torch.cuda.get_device_name() if args.device.startswith('cuda') else args.device}; "
            f"{len(snippets)} stdlib functions, batch {args.batch_size}, cut at {max_subwords} subwords"
        )

        bare = bare_throughput(loaded, [s.code for s in snippets], args.batch_size, max_subwords)
        n_shards = -(-len(snippets) // shard_size)
        cat_shard(str(model_dir), "python", data_dir, 0, 16, settings, str(out / "warm.npz"), "warm")
        synchronize(args.device)
        t0 = time.perf_counter()
        paths = [
            cat_shard(
                str(model_dir),
                "python",
                data_dir,
                k,
                shard_size,
                settings,
                str(out / "cat" / f"shard-{k:04d}.npz"),
                f"gpu-{k}",
            )
            for k in range(n_shards)
        ]
        cat_reduce(str(model_dir), "python", paths, settings, str(out / "cat"), "gpu-reduce")
        synchronize(args.device)
        pipeline = len(snippets) / (time.perf_counter() - t0)
        print(f"bare forward (attentions + hidden states): {bare:8.1f} snippets/s")
        print(f"codeprobe CAT-probing pipeline:            {pipeline:8.1f} snippets/s")
        print(f"ratio pipeline / bare throughput: {pipeline / bare:.2f} (goal >= 0.8)")


if __name__ == "__main__":
    main()
