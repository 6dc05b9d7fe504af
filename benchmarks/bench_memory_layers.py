"""Benchmark: peak memory against the number of layers, at a long input.

Extraction pools each layer's attention inside a forward hook (`codeprobe.model.extraction`),
so at most one layer's (heads x n x n) weights should exist at a time, and peak memory should
barely move with depth. This checks it on tiny random-weight models whose attention dominates
memory: width 64, 4 heads, 2, 4, 8 and 16 layers, as an encoder (RoBERTa, 2,304 positions)
and as a decoder (Llama, grouped-query attention, BOS first), each with a byte-level BPE fast
tokenizer trained here on a few standard-library files. One input: top-level functions of the
standard library joined into one Python source of about 2,048 subwords. At that length one
layer's float32 attention is 4 x 2048^2 x 4 B = 64 MiB, so holding every layer's would add
about 1 GiB at 16 layers.

Each (model, layers, method) runs in a fresh child process whose peak RSS (`os.wait4`'s
ru_maxrss) is reported:
  cat:       `codeprobe cat FILE --model DIR --max-subwords 2048` (attention of every layer,
             CAT-scores, baselines);
  astprobe:  AST-Probe's hidden-state path: `cached_hidden_states` with an attention-free
             `Extractor` (length policy "skip") writing the snippet's cache.
Each runs twice: under the allocator codeprobe's entry points set ("entry", what a user gets;
how much freed memory its arena keeps varies from run to run) and with every array over 1 MiB
mapped on its own and returned when freed ("1MiB", MALLOC_MMAP_THRESHOLD_=1048576: the peak of
memory in use). Last, per model, method and allocator, the ratio of the peak at 16 layers to
the peak at 2.

Usage: python benchmarks/bench_memory_layers.py [--layers 2 4 8 16] [--methods cat astprobe]
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import torch

KINDS = ("encoder", "decoder")
METHODS = ("cat", "astprobe")
# (see the module doc) `limit_heap_growth` keeps a MALLOC_* variable of the user's, so the child
# runs under it; the arena's share varies: 714-874 MiB in three runs of one 16-layer command
ALLOCATORS = {"entry": {}, "1MiB": {"MALLOC_MMAP_THRESHOLD_": "1048576"}}
MAX_SUBWORDS = 2048
HIDDEN, HEADS, VOCAB = 64, 4, 800
INIT = 0.3  # a wide init range makes attention peaked, like a trained model's
TRAIN_FILES = ("textwrap.py", "heapq.py", "bisect.py", "colorsys.py", "fnmatch.py")
SOURCE_FILES = ("textwrap.py", "heapq.py", "bisect.py", "fnmatch.py", "shlex.py", "tokenize.py", "inspect.py")


def stdlib(name: str) -> str:
    return (Path(sysconfig.get_paths()["stdlib"]) / name).read_text(encoding="utf-8")


def tokenizer(kind: str):
    """Byte-level BPE trained on `TRAIN_FILES`: `<s> code </s>` (RoBERTa's framing) for the
    encoder, `<|begin_of_text|> code` (Llama 3's) for the decoder."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    specials = ["<s>", "</s>", "<pad>"] if kind == "encoder" else ["<|begin_of_text|>", "<|end_of_text|>"]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator([stdlib(name) for name in TRAIN_FILES], trainer)
    ids = {t: tk.token_to_id(t) for t in specials}
    template = "<s> $A </s>" if kind == "encoder" else "<|begin_of_text|> $A"
    frame = processors.TemplateProcessing(single=template, special_tokens=list(ids.items()))
    tk.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False), frame])
    if kind == "encoder":
        return transformers.PreTrainedTokenizerFast(
            tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>", cls_token="<s>", sep_token="</s>"
        )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>"
    )


def build(kind: str, n_layers: int, folder: Path, tok) -> Path:
    """Save a seeded random-weight model of `kind` with `n_layers` layers and `tok` to `folder`."""
    import transformers

    from codeprobe.model.load_output import quiet_loading

    sizes = {
        "vocab_size": len(tok),
        "hidden_size": HIDDEN,
        "intermediate_size": 2 * HIDDEN,
        "num_hidden_layers": n_layers,
        "num_attention_heads": HEADS,
        "initializer_range": INIT,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    if kind == "encoder":
        # RoBERTa positions start at padding_idx + 1: 2,306 positions take 2,304 subwords.
        config = transformers.RobertaConfig(max_position_embeddings=2306, **sizes)
        model_class = transformers.RobertaModel
    else:
        config = transformers.LlamaConfig(max_position_embeddings=2304, num_key_value_heads=2, **sizes)
        model_class = transformers.LlamaForCausalLM
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = model_class(config)
    with quiet_loading():
        model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def long_source(tok, budget: int) -> str:
    """Top-level functions of `SOURCE_FILES`, in order, each joined on if the source stays
    within `budget` subwords (special tokens excluded)."""
    parts: list[str] = []
    for name in SOURCE_FILES:
        text = stdlib(name)
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef):
                candidate = [*parts, ast.get_source_segment(text, node)]
                if len(tok("\n\n".join(candidate) + "\n", add_special_tokens=False)["input_ids"]) <= budget:
                    parts = candidate
    return "\n\n".join(parts) + "\n"


def astprobe_child(model_dir: str, source: str) -> None:
    """AST-Probe's hidden-state path on one snippet, in this (child) process, into a cache of
    its own (a cache found would be reopened, not computed)."""
    from codeprobe.allocator import limit_heap_growth
    from codeprobe.model import Extractor, ModelInput, load_model
    from codeprobe.probes.astprobe import cached_hidden_states
    from codeprobe.syntax import parse

    limit_heap_growth()  # as codeprobe's entry points do
    code = Path(source).read_text(encoding="utf-8")
    item = ModelInput.from_tokens("long", code, parse(code, "python").tokens())
    loaded = load_model(model_dir, device="cpu")
    extractor = Extractor(loaded, attention=False, length_policy="skip", max_subwords=MAX_SUBWORDS)
    with tempfile.TemporaryDirectory(prefix="bench-memory-cache-") as cache_root:
        cache = cached_hidden_states(cache_root, [item], extractor)
    if cache.skipped:
        raise RuntimeError("the snippet did not fit the model")


def peak_mib(command: list[str], allocator: str) -> float:
    """Peak RSS in MiB of `command` run as a child process under `allocator` (a key of
    ALLOCATORS), from the child's own rusage (wait4)."""
    env = {**os.environ, **ALLOCATORS[allocator]}
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stderr.decode(errors='replace')[-2000:]}")
    return usage.ru_maxrss / 1024  # KiB on Linux


def command(method: str, model_dir: Path, source: Path) -> list[str]:
    if method == "cat":
        cli = Path(sys.executable).with_name("codeprobe")
        return [str(cli), "cat", str(source), "--model", str(model_dir), "--max-subwords", str(MAX_SUBWORDS)]
    return [sys.executable, __file__, "--child-astprobe", str(model_dir), str(source)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--child-astprobe", nargs=2, metavar=("MODEL", "SOURCE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_astprobe:
        astprobe_child(*args.child_astprobe)
        return
    peaks: dict[tuple[str, int, str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-memory-layers-") as tmp:
        work = Path(tmp)
        print(f"{'kind':8} {'layers':>6} {'method':9} {'subwords':>8}" + "".join(f" {a:>7}" for a in ALLOCATORS))
        for kind in KINDS:
            tok = tokenizer(kind)
            framing = len(tok("x", add_special_tokens=True)["input_ids"]) - 1
            source = work / f"{kind}.py"
            source.write_text(long_source(tok, MAX_SUBWORDS - framing), encoding="utf-8")
            n_subwords = len(tok(source.read_text(encoding="utf-8"))["input_ids"])
            for n_layers in args.layers:
                model_dir = build(kind, n_layers, work / f"{kind}-{n_layers}", tok)
                for method in args.methods:
                    for allocator in ALLOCATORS:
                        peaks[kind, n_layers, method, allocator] = peak_mib(
                            command(method, model_dir, source), allocator
                        )
                    row = "".join(f" {peaks[kind, n_layers, method, a]:>7.0f}" for a in ALLOCATORS)
                    print(f"{kind:8} {n_layers:>6} {method:9} {n_subwords:>8}{row}", flush=True)
    low, high = min(args.layers), max(args.layers)
    print(f"\npeak MiB, {high} layers / {low} layers")
    for kind in KINDS:
        for method in args.methods:
            cells = []
            for a in ALLOCATORS:
                top, bottom = peaks[kind, high, method, a], peaks[kind, low, method, a]
                cells.append(f"{a}: {top:.0f} / {bottom:.0f} = {top / bottom:.3f}")
            print(f"{kind:8} {method:9} " + "; ".join(cells))


if __name__ == "__main__":
    main()
