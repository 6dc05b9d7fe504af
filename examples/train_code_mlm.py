"""Train a masked language model on real code, saving checkpoints at roughly log-spaced steps,
so that codeprobe has a code model to probe across its training (`codeprobe run` with the output
folder as the model: see the README, "The whole loop", and docs/emergence.md).

Two ways, both seeded and offline:

    # from scratch: a small RoBERTa-style model and a BPE tokenizer trained here
    python examples/train_code_mlm.py --out /somewhere/outside/the/repo/mlm-stdlib
    # continued MLM training of a pretrained encoder, CodeBERT's recipe at small scale
    python examples/train_code_mlm.py --init packaged --source stdlib ../code-train-js \
        --languages python javascript --out ../ckpt/minilm-code

What it does:
1. reads every source file of the chosen languages under each `--source` ("stdlib": the running
   interpreter's standard library, without its tests and site-packages; a git checkout: its
   tracked files; any other directory: walked), in sorted order
   (`codeprobe.datasets.sources.source_files`), and holds `--eval-fraction` of each language's
   files out (seeded) to measure the held-out MLM loss; the files used are listed, with their
   sizes and sha256, in `OUT/train_files.tsv`;
2. from scratch: trains a byte-level BPE tokenizer on the training files with `tokenizers`
   (RoBERTa's special tokens) and initialises `RobertaForMaskedLM`; with `--init PATH` (a model
   folder, or "packaged": the packaged all-MiniLM-L6-v2): loads that encoder and its own
   tokenizer, with a masked-language-model head (newly initialised, seeded, where the folder has
   none: all-MiniLM-L6-v2 ships none) and saves it untrained as `checkpoint-0`;
3. cuts the token stream into blocks of `--max-length` tokens (`[CLS]/<s> ... [SEP]/</s>`) and
   trains with Hugging Face's Trainer (15% masking, the usual 80/10/10 replacement; the MLM head
   runs on the masked positions only, the same loss at a fraction of the vocabulary projection's
   cost), saving `checkpoint-<step>` folders (safetensors weights, the tokenizer beside each, so
   every checkpoint loads by itself, offline) at 10, 20, 50, 100, ... steps and the last step;
4. at every saved step (and step 0) computes the held-out MLM loss per language on the same
   masked blocks (fixed masking), written to `OUT/train_settings.json`.

From scratch, the defaults (4 layers, 256 wide, 4 heads, 8,192-token vocabulary, 256 positions:
5.4M parameters; batch 8 x 256 tokens, 1,000 steps) take about 25 minutes on a quiet 2-core CPU
(measured: about 1.5 s per step). For `--init`'s figures see docs/emergence.md.
These are demonstration models: not CodeBERT, nor comparable to any published model.

Needs `accelerate` (Trainer's requirement): `pip install -e '.[train]'`.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
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
PACKAGED = "packaged"


@dataclass(frozen=True)
class TrainSettings:
    """Everything that shapes the trained model (written to `OUT/train_settings.json`).

    Attributes:
        source: where the code is read: "stdlib" and/or directories / git checkouts.
        languages: languages whose files are read (by extension).
        init: "" to train from scratch; a model folder, or "packaged" (the packaged
            all-MiniLM-L6-v2), to continue its training with an MLM head. The model's shape and
            tokenizer are then the init's, and `vocab_size`, `layers`, `hidden`, `heads`,
            `intermediate` are not used.
        vocab_size: byte-level BPE vocabulary size, special tokens included (from scratch).
        layers, hidden, heads, intermediate: the RoBERTa encoder's shape (from scratch).
        max_length: tokens per training block, special tokens included; from scratch also the
            model's position limit (so probing skips longer snippets, counted by reason).
        batch_size, max_steps, lr, warmup_ratio, weight_decay: optimisation (AdamW, linear decay).
        mlm_probability: share of tokens masked.
        save_steps: steps whose checkpoints are saved (empty: 1-2-5 steps and the last).
        max_files: read at most this many files per source (0: all), for quick trials.
        eval_fraction: share of each language's files held out for the held-out MLM loss.
        eval_blocks: at most this many held-out blocks per language are scored.
        seed: seeds the file split, the tokenizer's input order, initialisation, data order and
            masking.
    """

    source: tuple[str, ...] = ("stdlib",)
    languages: tuple[str, ...] = ("python",)
    init: str = ""
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
    eval_fraction: float = 0.02
    eval_blocks: int = 64
    seed: int = 0

    def checkpoint_steps(self) -> tuple[int, ...]:
        """The training steps saved: `save_steps`, else 10, 20, 50, 100, ... below `max_steps`,
        and `max_steps` itself (roughly log-spaced, so early training is seen in detail). With
        `init`, step 0 (the initial model) is saved besides."""
        if self.save_steps:
            return tuple(sorted({s for s in self.save_steps if 0 < s <= self.max_steps}))
        steps = {m * 10**e for e in range(1, int(math.log10(max(self.max_steps, 1))) + 1) for m in (1, 2, 5)}
        return tuple(sorted({s for s in steps if s < self.max_steps} | {self.max_steps}))


@dataclass(frozen=True)
class SourceFile:
    """One file read: where from, its path under that source, language, text, and sha256."""

    source: str
    path: str
    language: str
    text: str
    sha256: str


def read_sources(sources: tuple[str, ...], languages: tuple[str, ...], max_files: int = 0) -> list[SourceFile]:
    """Every readable UTF-8 source file of `languages` under each source, sorted by source then
    path. Files over 1 MiB, undecodable or binary ones are left out (and logged)."""
    from codeprobe.datasets.sources import EXTENSIONS, source_files, stdlib_root
    from codeprobe.errors import InputError

    read, skipped = [], 0
    for source in sources:
        stdlib = source.strip().lower() == "stdlib"
        root = stdlib_root() if stdlib else Path(source).expanduser()
        if not root.is_dir():
            raise InputError(f"--source {source!r} is not a directory (nor 'stdlib')")
        for rel, path in source_files(root, languages, stdlib=stdlib)[: max_files or None]:
            try:
                data = path.read_bytes()
                text = data.decode("utf-8") if len(data) <= MAX_FILE_BYTES else ""
            except (OSError, UnicodeDecodeError):
                text = ""
            if not text.strip() or "\x00" in text:
                skipped += 1
                continue
            language = EXTENSIONS[path.suffix.lower()]
            read.append(SourceFile(source, rel, language, text, hashlib.sha256(data).hexdigest()))
    if not read:
        raise InputError(f"no {', '.join(languages)} source files under {', '.join(sources)}")
    log.info("read %d files (%.1f MB); %d left out", len(read), sum(len(f.text) for f in read) / 1e6, skipped)
    return read


def split_files(files: list[SourceFile], fraction: float, seed: int) -> tuple[list[SourceFile], list[SourceFile]]:
    """(training files, held-out files): `fraction` of each language's files (at least one
    where the language has two or more), drawn with `seed`."""
    rng = np.random.default_rng(seed)
    held = set()
    for language in sorted({f.language for f in files}):
        idx = [i for i, f in enumerate(files) if f.language == language]
        n = min(len(idx) - 1, max(1, round(fraction * len(idx)))) if fraction > 0 else 0
        held.update(rng.choice(idx, size=n, replace=False).tolist() if n > 0 else [])
    return [f for i, f in enumerate(files) if i not in held], [f for i, f in enumerate(files) if i in held]


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
    """The files' tokens, joined by the separator token and cut into blocks of `max_length`
    (`cls` + content + `sep`: `<s> ... </s>` for RoBERTa, `[CLS] ... [SEP]` for BERT); the last,
    shorter block is dropped. Item: {"input_ids": LongTensor (max_length,)}."""

    def __init__(self, texts: list[str], tokenizer, max_length: int) -> None:
        sep, cls = tokenizer.sep_token_id, tokenizer.cls_token_id
        backend = copy.deepcopy(tokenizer.backend_tokenizer)
        backend.no_truncation()  # a saved tokenizer.json may truncate and pad (all-MiniLM-L6-v2: to 128)
        backend.no_padding()
        docs = backend.encode_batch(texts, add_special_tokens=False)
        stream = np.fromiter((t for doc in docs for t in (*doc.ids, sep)), dtype=np.int64)
        body = max_length - 2
        n = len(stream) // body
        blocks = stream[: n * body].reshape(n, body)
        frame = np.full((n, 1), cls, np.int64), np.full((n, 1), sep, np.int64)
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


def init_folder(init: str) -> Path:
    """The model folder `--init` names ("packaged": the packaged all-MiniLM-L6-v2)."""
    from codeprobe.errors import InputError
    from codeprobe.model.source import default_model_dir

    folder = default_model_dir() if init == PACKAGED else Path(init).expanduser()
    if not (folder / "config.json").is_file():
        raise InputError(f"--init {init!r}: no config.json in {folder}")
    return folder


def load_pretrained(folder: Path):
    """(tokenizer, masked-LM model) from a local model folder, safetensors only, no remote code.
    A head the folder lacks is initialised by transformers (seeded by the caller)."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForMaskedLM.from_pretrained(
        folder, local_files_only=True, use_safetensors=True, trust_remote_code=False, attn_implementation="eager"
    )
    return tokenizer, model


def mlm_head(model):
    """The masked-LM head module of a *ForMaskedLM model (BERT's `cls`, RoBERTa's `lm_head`)."""
    return model.cls if hasattr(model, "cls") else model.lm_head


def masked_lm_loss(model, input_ids, labels, attention_mask=None):
    """Mean cross-entropy over the masked positions (labels != -100), with the head applied to
    those positions only."""
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    masked = labels != -100
    logits = mlm_head(model)(hidden[masked])
    return torch.nn.functional.cross_entropy(logits.float(), labels[masked])


def fixed_masks(blocks: Blocks, tokenizer, settings: TrainSettings) -> list[dict[str, torch.Tensor]]:
    """Held-out batches masked once (seeded), so every checkpoint is scored on the same task."""
    from transformers import DataCollatorForLanguageModeling

    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=settings.mlm_probability, seed=settings.seed)
    rows = [blocks[i] for i in range(min(len(blocks), settings.eval_blocks))]
    return [collator(rows[i : i + settings.batch_size]) for i in range(0, len(rows), settings.batch_size)]


@torch.no_grad()
def heldout_loss(model, batches: list[dict[str, torch.Tensor]]) -> float:
    """Mean masked-token cross-entropy (nats) over the held-out batches, weighted by masked
    tokens; NaN without any."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for batch in batches:
        n = int((batch["labels"] != -100).sum())
        ids, labels = batch["input_ids"].to(device), batch["labels"].to(device)
        total += float(masked_lm_loss(model, ids, labels)) * n
        count += n
    model.train(was_training)
    return total / count if count else float("nan")


def write_files_list(out: Path, train_files: list[SourceFile], heldout: list[SourceFile]) -> None:
    """`OUT/train_files.tsv`: split, source, language, path, bytes and sha256 of every file."""
    lines = ["split\tsource\tlanguage\tpath\tbytes\tsha256"]
    for split, files in (("train", train_files), ("heldout", heldout)):
        lines += [f"{split}\t{f.source}\t{f.language}\t{f.path}\t{len(f.text.encode())}\t{f.sha256}" for f in files]
    (out / "train_files.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def save_checkpoint(model, tokenizer, folder: Path, step: int) -> None:
    """A checkpoint folder as Trainer writes one: weights, tokenizer, trainer_state.json last
    (the mark codeprobe's checkpoint discovery takes for a complete checkpoint)."""
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}), encoding="utf-8")


def train(settings: TrainSettings, out: str | Path) -> Path:
    """Train and save `checkpoint-<step>` folders under `out` (see the module docstring).

    Writes `out/train_settings.json` (the settings, data size, parameters, seconds, held-out
    loss per checkpoint and language), `out/train_files.tsv` and, in every checkpoint,
    `trainer_state.json` last (Trainer's order), which codeprobe's checkpoint discovery takes as
    the mark of a complete checkpoint.

    Returns:
        `out`.

    Raises:
        InputError: no readable source files; an output folder that already holds checkpoints;
            an `init` folder without config.json.
    """
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainerCallback, TrainingArguments, set_seed

    from codeprobe.errors import InputError

    out = Path(out)
    if any(out.glob("checkpoint-*")):
        raise InputError(f"{out} already holds checkpoints; choose a new --out")
    started = time.perf_counter()
    set_seed(settings.seed)
    files = read_sources(settings.source, settings.languages, settings.max_files)
    train_files, heldout_files = split_files(files, settings.eval_fraction, settings.seed)
    texts = [f.text for f in train_files]
    set_seed(settings.seed)
    if settings.init:
        tokenizer, model = load_pretrained(init_folder(settings.init))
    else:
        tokenizer = train_tokenizer(texts, settings.vocab_size, settings.max_length)
        model = build_model(settings, tokenizer)
    data = Blocks(texts, tokenizer, settings.max_length)
    if len(data) < settings.batch_size:
        raise InputError(f"only {len(data)} blocks of {settings.max_length} tokens: too little code")
    heldout = {}
    for language in sorted({f.language for f in heldout_files}):
        blocks = Blocks([f.text for f in heldout_files if f.language == language], tokenizer, settings.max_length)
        if len(blocks):
            heldout[language] = fixed_masks(blocks, tokenizer, settings)
        else:
            log.warning(
                "held-out %s files make no full block of %d tokens: no held-out loss", language, settings.max_length
            )
    n_params = sum(p.numel() for p in model.base_model.parameters())
    log.info(
        "%d training files, %d tokens, %d blocks; %d held-out files; %s encoder with %.2fM parameters "
        "(MLM head excluded)",
        len(train_files),
        data.n_tokens,
        len(data),
        len(heldout_files),
        model.config.model_type,
        n_params / 1e6,
    )
    save_at = set(settings.checkpoint_steps())
    losses: list[dict] = []

    def record_heldout(step: int, model) -> None:
        entry = {"step": step, **{lang: round(heldout_loss(model, b), 4) for lang, b in heldout.items()}}
        losses.append(entry)
        log.info("held-out MLM loss at step %d: %s", step, entry)

    class SaveAtSteps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            control.should_save = state.global_step in save_at
            if control.should_save:
                record_heldout(state.global_step, kwargs["model"])
            return control

        def on_save(self, args, state, control, **kwargs):
            # Trainer pickles its arguments beside the weights; a checkpoint to share holds none.
            (out / f"checkpoint-{state.global_step}" / "training_args.bin").unlink(missing_ok=True)

    class MaskedPositionsTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = masked_lm_loss(model, inputs["input_ids"], inputs["labels"], inputs.get("attention_mask"))
            return (loss, None) if return_outputs else loss

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
    trainer = MaskedPositionsTrainer(
        model=model,
        args=args,
        train_dataset=data,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[SaveAtSteps()],
    )
    out.mkdir(parents=True, exist_ok=True)
    write_files_list(out, train_files, heldout_files)
    tokenizer.save_pretrained(out / "tokenizer")
    if settings.init:
        record_heldout(0, model)
        save_checkpoint(model, tokenizer, out / "checkpoint-0", 0)
    result = trainer.train()
    record = {
        "settings": asdict(settings),
        "files": {"train": len(train_files), "heldout": len(heldout_files)},
        "tokens": data.n_tokens,
        "blocks": len(data),
        "encoder_parameters": n_params,
        "checkpoints": ([0] if settings.init else []) + sorted(save_at),
        "heldout_loss": losses,
        "train_loss": result.training_loss,
        "seconds": round(time.perf_counter() - started, 1),
        "seconds_per_step": round(result.metrics["train_runtime"] / settings.max_steps, 3),
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
    parser.add_argument(
        "--source",
        nargs="+",
        default=list(defaults.source),
        help="'stdlib' (default) and/or directories, git checkouts",
    )
    parser.add_argument("--languages", nargs="+", default=list(defaults.languages))
    parser.add_argument(
        "--init",
        default="",
        help="continue training this model folder ('packaged': the packaged all-MiniLM-L6-v2); default: from scratch",
    )
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
        "eval_blocks",
        "seed",
    ):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--warmup-ratio", type=float, default=defaults.warmup_ratio)
    parser.add_argument("--eval-fraction", type=float, default=defaults.eval_fraction)
    parser.add_argument(
        "--save-steps",
        type=int,
        nargs="*",
        default=[],
        help="steps to save (default: 10, 20, 50, 100, ... and the last)",
    )
    args = vars(parser.parse_args(argv))
    out = args.pop("out")
    for name in ("source", "languages", "save_steps"):
        args[name] = tuple(args[name])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    train(TrainSettings(**args), out)


if __name__ == "__main__":
    main()
