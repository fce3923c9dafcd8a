"""`synth train`: parse flags, build a TrainConfig, make one library call, print where the student went.

Registered in synth/cli.py with `app.command("train")(train_command)`; synth's main() turns a SynthError into
one line on stderr.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError


def train_command(
    data: Optional[Path] = typer.Argument(None, help="A synth run folder, or an exported dataset (openai-chat, alpaca, sharegpt, JSONL, hf folder)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder for the adapter, samples and metrics (default students/default)."),
    resume: Optional[Path] = typer.Option(None, help="Continue the run in this output folder from its last checkpoint."),
    overwrite: bool = typer.Option(False, help="Replace an existing output folder."),
    config: Optional[Path] = typer.Option(None, help="JSON file of settings; flags override it."),
    student: Optional[str] = typer.Option(None, help="A local Hugging Face causal-LM folder (default: the embedded SmolLM2-135M-Instruct)."),
    epochs: Optional[int] = typer.Option(None, help="Passes over the data (default 3)."),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many optimizer steps instead."),
    lr: Optional[float] = typer.Option(None, help="Peak learning rate (default 2e-4)."),
    scheduler: Optional[str] = typer.Option(None, help="cosine (default), linear, constant_with_warmup..."),
    warmup_ratio: Optional[float] = typer.Option(None, help="Share of the steps spent warming up (default 0.05)."),
    batch_size: Optional[int] = typer.Option(None, help="Packed rows per micro-batch per process (default 2)."),
    grad_accum: Optional[int] = typer.Option(None, help="Micro-batches per optimizer step (default 1)."),
    max_len: Optional[int] = typer.Option(None, help="Tokens per example and per packed row (default 1024)."),
    overlong: Optional[str] = typer.Option(None, help="What to do with longer examples: truncate (default) or drop."),
    packing: Optional[bool] = typer.Option(None, "--packing/--no-packing", help="Pack several examples per row (default on)."),
    erase_prompt: Optional[bool] = typer.Option(None, "--erase-prompt/--keep-prompt", help="Train under a generic system message (Orca 2 prompt erasing)."),
    lora_r: Optional[int] = typer.Option(None, help="LoRA rank (default 16)."),
    lora_alpha: Optional[int] = typer.Option(None, help="LoRA alpha (default 32)."),
    lora_dropout: Optional[float] = typer.Option(None, help="LoRA dropout (default 0.05)."),
    target_modules: Optional[str] = typer.Option(None, help="Comma-separated module names, or all-linear (default)."),
    qlora: Optional[str] = typer.Option(None, help="auto (default: 4-bit base when bitsandbytes and a GPU exist), on, off."),
    precision: Optional[str] = typer.Option(None, help="auto (default: bf16 on a GPU that has it, else fp32), bf16, fp32."),
    grad_checkpointing: Optional[bool] = typer.Option(None, "--grad-checkpointing/--no-grad-checkpointing", help="Trade compute for memory (default off)."),
    attn: Optional[str] = typer.Option(None, help="auto (default: flash_attention_2 when installed on a GPU, else packed: synth's mask-free packed attention), packed, sdpa, eager, flash_attention_2."),
    eval_fraction: Optional[float] = typer.Option(None, help="Share of examples held out for eval loss and samples (default 0.1)."),
    samples: Optional[int] = typer.Option(None, help="Held-out prompts answered by base and tuned student (default 3)."),
    checkpoint_every: Optional[int] = typer.Option(None, help="Optimizer steps between checkpoints (default 50)."),
    seed: Optional[int] = typer.Option(None, help="Seed for the split, the data order and LoRA init (default 0)."),
    merge: Optional[bool] = typer.Option(None, "--merge/--no-merge", help="Also write the merged full model to OUT/merged."),
) -> None:
    """Fine-tune a LoRA student on a synth run: before/after eval loss and samples, resumable checkpoints."""
    from rich.console import Console
    from transformers.utils import logging as hf_logging

    from ..settings import load_config_file
    from .api import train
    from .config import TrainConfig

    if resume is None and data is None and config is None:
        raise ConfigError("pass a dataset (a synth run folder or an exported file), or --resume OUT")
    if resume is not None and data is not None:
        raise ConfigError("--resume continues a run on its saved data; leave the dataset argument out")
    base = TrainConfig.from_dict(load_config_file(config), str(config)) if config else TrainConfig()
    overrides = dict(
        data=str(data) if data else None, out=str(out) if out else None, student=student, epochs=epochs,
        max_steps=max_steps, lr=lr, scheduler=scheduler, warmup_ratio=warmup_ratio, batch_size=batch_size,
        grad_accum=grad_accum, max_len=max_len, overlong=overlong, packing=packing, erase_prompt=erase_prompt,
        lora_r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, qlora=qlora, precision=precision,
        target_modules=[m.strip() for m in target_modules.split(",")] if target_modules else None,
        grad_checkpointing=grad_checkpointing, attn=attn, eval_fraction=eval_fraction, samples=samples,
        checkpoint_every=checkpoint_every, seed=seed, merge=merge,
    )
    import warnings

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")   # raised inside peft, not ours
    hf_logging.set_verbosity_error()              # our log says what happens; no progress bars per weight file
    hf_logging.disable_progress_bar()
    err = Console(stderr=True)
    log = lambda message: err.print(message, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    if resume is not None:
        result = train(resume=resume, log=log, **overrides)
    else:
        result = train(base, overwrite=overwrite, log=log, **overrides)
    if int(os.environ.get("RANK", "0")) != 0:      # under torchrun the main process reports for all
        return
    before = "n/a" if result.eval_loss_before is None else f"{result.eval_loss_before:.4f}"
    after = "n/a" if result.eval_loss_after is None else f"{result.eval_loss_after:.4f}"
    Console().print(f"trained {result.steps} steps: eval loss {before} -> {after}, "
                    f"{result.tokens_per_s:.0f} tokens/s; adapter in {result.adapter}", soft_wrap=True)
