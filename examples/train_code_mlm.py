"""Train a small RoBERTa-style masked language model from scratch on real code, saving
checkpoints at roughly log-spaced steps, so that codeprobe has a code model to probe across its
training (`codeprobe run` with the output folder as the model: see the README, "The whole loop").

    python examples/train_code_mlm.py --out /somewhere/outside/the/repo/mlm-stdlib
    python examples/train_code_mlm.py --source ~/src/some-checkout --languages python java --out ...

What it does, all seeded and offline:
1. reads every source file of the chosen languages under `--source` ("stdlib": the running
   interpreter's standard library, without its tests and site-packages; a git checkout: its
   tracked files), in sorted order (`codeprobe.datasets.sources.source_files`);
2. trains a byte-level BPE tokenizer on them with `tokenizers` (RoBERTa's special tokens);
3. cuts the token stream into blocks of `--max-length` tokens (`<s> ... </s>`) and trains
   `RobertaForMaskedLM` (15% masking, the usual 80/10/10 replacement) with Hugging Face's
   Trainer, saving `checkpoint-<step>` folders (safetensors weights, the tokenizer beside each,
   so every checkpoint loads by itself, offline) at 10, 20, 50, 100, ... steps and the last step.

The defaults (4 layers, 256 wide, 4 heads, 8,192-token vocabulary, 256 positions: 5.4M
parameters; batch 8 x 256 tokens, 1,000 steps) take about 25 minutes on a quiet 2-core CPU (measured:
about 1.5 s per step; 3,000 steps would take 75 minutes).
This is a demonstration model: not CodeBERT, nor comparable to any published model.

Needs `accelerate` (Trainer's requirement): `pip install -e '.[train]'`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("train_code_mlm")

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # RoBERTa's ids 0..4
MAX_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class TrainSettings:
    """Everything that shapes the trained model (written to `OUT/train_settings.json`).

    Attributes:
        source: "stdlib" or a directory / git checkout of source files.
        languages: languages whose files are read (by extension).
        vocab_size: byte-level BPE vocabulary size, special tokens included.
        layers, hidden, heads, intermediate: the RoBERTa encoder's shape.
        max_length: tokens per training block, `<s>` and `</s>` included; also the model's
            position limit (so probing skips longer snippets, counted by reason).
        batch_size, max_steps, lr, warmup_ratio, weight_decay: optimisation (AdamW, linear decay).
        mlm_probability: share of tokens masked.
        save_steps: steps whose checkpoints are saved (empty: 1-2-5 steps and the last).
        max_files: read at most this many files (0: all), for quick trials.
        seed: seeds the tokenizer's input order, initialisation, data order and masking.
    """

    source: str = "stdlib"
    languages: tuple[str, ...] = ("python",)
    vocab_size: int = 8192
    layers: int = 4
    hidden: int = 256
    heads: int = 4
    intermediate: int = 1024
    max_length: int = 256
    batch_size: int = 8
    max_steps: int = 1000
    lr: float = 5e-4
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    mlm_probability: float = 0.15
    save_steps: tuple[int, ...] = field(default=())
    max_files: int = 0
    seed: int = 0

    def checkpoint_steps(self) -> tuple[int, ...]:
        """The steps saved: `save_steps`, else 10, 20, 50, 100, ... below `max_steps`, and
        `max_steps` itself (roughly log-spaced, so early training is seen in detail)."""
        if self.save_steps:
            return tuple(sorted({s for s in self.save_steps if 0 < s <= self.max_steps}))
        steps = {m * 10**e for e in range(1, int(math.log10(max(self.max_steps, 1))) + 1) for m in (1, 2, 5)}
        return tuple(sorted({s for s in steps if s < self.max_steps} | {self.max_steps}))


def read_sources(source: str, languages: tuple[str, ...], max_files: int = 0) -> list[tuple[str, str]]:
    """(relative path, text) of every readable UTF-8 source file, sorted by path. Files over 1 MiB,
    undecodable or binary ones are left out (and logged)."""
    from codeprobe.datasets.sources import source_files, stdlib_root
    from codeprobe.errors import InputError

    stdlib = source.strip().lower() == "stdlib"
    root = stdlib_root() if stdlib else Path(source).expanduser()
    if not root.is_dir():
        raise InputError(f"--source {source!r} is not a directory (nor 'stdlib')")
    files = source_files(root, languages, stdlib=stdlib)
    texts, skipped = [], 0
    for rel, path in files[: max_files or None]:
        try:
            data = path.read_bytes()
            text = data.decode("utf-8") if len(data) <= MAX_FILE_BYTES else ""
        except (OSError, UnicodeDecodeError):
            text = ""
        if not text.strip() or "\x00" in text:
            skipped += 1
            continue
        texts.append((rel, text))
    if not texts:
        raise InputError(f"no {', '.join(languages)} source files under {root}")
    log.info(
        "read %d files (%.1f MB) under %s; %d left out", len(texts), sum(len(t) for _, t in texts) / 1e6, root, skipped
    )
    return texts


def train_tokenizer(texts: list[str], vocab_size: int, max_length: int):
    """A byte-level BPE tokenizer (GPT-2 / RoBERTa style) trained on `texts`, framing input as
    `<s> ... </s>`, with character offsets (a fast tokenizer), as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tk.train_from_iterator(texts, trainer)
    tk.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        cls_token="<s>",
        sep_token="</s>",
        model_max_length=max_length,
    )


class Blocks(torch.utils.data.Dataset):
    """The files' tokens, joined by `</s>` and cut into blocks of `max_length` (`<s>` + content +
    `</s>`); the last, shorter block is dropped. Item: {"input_ids": LongTensor (max_length,)}."""

    def __init__(self, texts: list[str], tokenizer, max_length: int) -> None:
        eos = tokenizer.eos_token_id
        docs = tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
        stream = np.fromiter((t for doc in docs for t in (*doc.ids, eos)), dtype=np.int64)
        body = max_length - 2
        n = len(stream) // body
        blocks = stream[: n * body].reshape(n, body)
        frame = np.full((n, 1), tokenizer.bos_token_id, np.int64), np.full((n, 1), eos, np.int64)
        self.blocks = torch.from_numpy(np.hstack([frame[0], blocks, frame[1]]))
        self.n_tokens = int(len(stream))

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.blocks[i]}


def build_model(settings: TrainSettings, tokenizer):
    """A freshly initialised (seeded by the caller) RobertaForMaskedLM of the settings' shape."""
    from transformers import RobertaConfig, RobertaForMaskedLM

    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=settings.hidden,
        num_hidden_layers=settings.layers,
        num_attention_heads=settings.heads,
        intermediate_size=settings.intermediate,
        max_position_embeddings=settings.max_length + 2,  # RoBERTa positions start after pad (id 1)
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return RobertaForMaskedLM(config)


def train(settings: TrainSettings, out: str | Path) -> Path:
    """Train and save `checkpoint-<step>` folders under `out` (see the module docstring).

    Writes `out/train_settings.json` (the settings, data size, parameters, seconds) and, in
    every checkpoint, `trainer_state.json` last (Trainer's order), which codeprobe's
    checkpoint discovery takes as the mark of a complete checkpoint.

    Returns:
        `out`.

    Raises:
        InputError: no readable source files; an output folder that already holds checkpoints.
    """
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainerCallback, TrainingArguments, set_seed

    from codeprobe.errors import InputError

    out = Path(out)
    if any(out.glob("checkpoint-*")):
        raise InputError(f"{out} already holds checkpoints; choose a new --out")
    started = time.perf_counter()
    set_seed(settings.seed)
    files = read_sources(settings.source, settings.languages, settings.max_files)
    texts = [text for _, text in files]
    tokenizer = train_tokenizer(texts, settings.vocab_size, settings.max_length)
    data = Blocks(texts, tokenizer, settings.max_length)
    if len(data) < settings.batch_size:
        raise InputError(f"only {len(data)} blocks of {settings.max_length} tokens: too little code")
    set_seed(settings.seed)
    model = build_model(settings, tokenizer)
    n_params = sum(p.numel() for p in model.roberta.parameters())
    log.info(
        "%d files, %d tokens, %d blocks; RoBERTa encoder with %.2fM parameters (MLM head excluded)",
        len(files),
        data.n_tokens,
        len(data),
        n_params / 1e6,
    )
    save_at = set(settings.checkpoint_steps())

    class SaveAtSteps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            control.should_save = state.global_step in save_at
            return control

        def on_save(self, args, state, control, **kwargs):
            # Trainer pickles its arguments beside the weights; a checkpoint to share holds none.
            (out / f"checkpoint-{state.global_step}" / "training_args.bin").unlink(missing_ok=True)

    args = TrainingArguments(
        output_dir=str(out),
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.lr,
        warmup_steps=int(settings.warmup_ratio * settings.max_steps),
        weight_decay=settings.weight_decay,
        lr_scheduler_type="linear",
        save_strategy="no",
        save_only_model=True,
        logging_steps=max(1, min(50, settings.max_steps // 20)),
        seed=settings.seed,
        data_seed=settings.seed,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=settings.mlm_probability, seed=settings.seed)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[SaveAtSteps()],
    )
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out / "tokenizer")
    result = trainer.train()
    record = {
        "settings": asdict(settings),
        "files": len(files),
        "tokens": data.n_tokens,
        "blocks": len(data),
        "encoder_parameters": n_params,
        "checkpoints": sorted(save_at),
        "train_loss": result.training_loss,
        "seconds": round(time.perf_counter() - started, 1),
        "torch_threads": torch.get_num_threads(),
        "log": [e for e in trainer.state.log_history if "loss" in e],
    }
    (out / "train_settings.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    log.info("done in %.0f s: %s", record["seconds"], out)
    return out


def main(argv: list[str] | None = None) -> None:
    defaults = TrainSettings()
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, help="output folder (outside the repository: weights are large)")
    parser.add_argument("--source", default=defaults.source, help="'stdlib' (default), a directory or a git checkout")
    parser.add_argument("--languages", nargs="+", default=list(defaults.languages))
    for name in (
        "vocab_size",
        "layers",
        "hidden",
        "heads",
        "intermediate",
        "max_length",
        "batch_size",
        "max_steps",
        "max_files",
        "seed",
    ):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument(
        "--save-steps",
        type=int,
        nargs="*",
        default=[],
        help="steps to save (default: 10, 20, 50, 100, ... and the last)",
    )
    args = vars(parser.parse_args(argv))
    out = args.pop("out")
    args["languages"] = tuple(args["languages"])
    args["save_steps"] = tuple(args["save_steps"])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    train(TrainSettings(**args), out)


if __name__ == "__main__":
    main()
