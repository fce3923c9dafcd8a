"""`synth train`: LoRA fine-tuning of a small student on a synth run or any dataset synth reads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from ..training.config import TrainConfig
from ._common import CONFIG_OPTION, say, settings_command, tell


@settings_command("train", TrainConfig)
def train(
    data: Optional[Path] = typer.Argument(None, help="A synth run folder, or any dataset synth reads (openai-chat, "
                                                     "alpaca, sharegpt, JSON/JSONL/.gz, Parquet, hf folder)."),
    resume: Optional[Path] = typer.Option(None, help="Continue the run in this output folder from its last checkpoint."),
    overwrite: bool = typer.Option(False, help="Replace an existing output folder (only a synth train folder)."),
    config: Optional[Path] = CONFIG_OPTION,
    **flags,
) -> None:
    """Fine-tune a LoRA student on a synth run: before/after eval loss and samples, resumable checkpoints."""
    import warnings

    from transformers.utils import logging as hf_logging

    from ..training.api import train as run_train

    if resume is None and data is None and config is None:
        raise ConfigError("pass a dataset (a synth run folder or a dataset file), or --resume OUT")
    if resume is not None and data is not None:
        raise ConfigError("--resume continues a run on its saved data; leave the dataset argument out")
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")   # raised inside peft, not ours
    hf_logging.set_verbosity_error()              # our log says what happens; no progress bars per weight file
    hf_logging.disable_progress_bar()
    base = TrainConfig.from_file(config) if config else None
    if data is not None:
        flags["data"] = str(data)
    result = run_train(base, resume=resume, overwrite=overwrite, log=say, **flags)
    if int(os.environ.get("RANK", "0")) != 0:      # under torchrun the main process reports for all
        return
    before = "n/a" if result.eval_loss_before is None else f"{result.eval_loss_before:.4f}"
    after = "n/a" if result.eval_loss_after is None else f"{result.eval_loss_after:.4f}"
    tell(f"trained {result.steps} steps: eval loss {before} -> {after}, "
         f"{result.tokens_per_s:.0f} tokens/s; adapter in {result.adapter}")
