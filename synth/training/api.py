"""`synth.train(...)`: the library call behind `synth train`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from .config import CONFIG_FILE, TrainConfig
from .loop import Trainer, TrainResult

# settings that may change on --resume without breaking the exact replay of the data order and losses
RESUMABLE = {"epochs", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every", "samples",
             "sample_max_tokens", "merge"}


def train(config: TrainConfig | None = None, *, resume: str | Path | None = None, overwrite: bool = False,
          log: Callable[[str], None] | None = None, on_step: Callable[[dict[str, Any]], None] | None = None,
          **overrides: Any) -> TrainResult:
    """Fine-tune a LoRA adapter on a synth run or an exported dataset; returns where everything was written.

    `synth.train(data="runs/general", out="students/general")`, or `synth.train(resume="students/general")`.
    """
    if resume is not None:
        saved = TrainConfig.load(resume)
        changed = sorted(k for k, v in overrides.items() if v is not None and v != getattr(saved, k, v))
        frozen = [k for k in changed if k not in RESUMABLE]
        if frozen:
            raise ConfigError(f"cannot change {', '.join(frozen)} on --resume; only {', '.join(sorted(RESUMABLE))} may change")
        config = saved.merged({**overrides, "out": str(resume)})
    else:
        config = (config or TrainConfig()).merged(overrides)
        out = Path(config.out)
        if overwrite and (out / CONFIG_FILE).exists():
            shutil.rmtree(out)
    return Trainer(config, resume=resume is not None, log=log, on_step=on_step).run()
