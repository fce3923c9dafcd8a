"""The one config type of `synth train`: typed, validated, printed at start and saved in the output folder.

Precedence: defaults < a config file (or the saved config on --resume) < flags.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..settings import from_dict, load_config_file

DEFAULT_STUDENT = "default"
CONFIG_FILE = "train_config.json"
GENERIC_SYSTEM = "You are a helpful assistant."
ATTENTION = ("auto", "packed", "sdpa", "eager", "flash_attention_2")
# transformers' schedulers that need nothing beyond warm-up and total steps
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial", "inverse_sqrt")


@dataclass
class TrainConfig:
    data: str = ""                             # a synth run folder or an exported dataset file/folder
    out: str = "students/default"
    student: str = DEFAULT_STUDENT             # "default": the embedded SmolLM2-135M-Instruct; else a local HF folder
    # LoRA
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    qlora: str = "auto"                        # auto: 4-bit base when bitsandbytes and a GPU are there; on | off
    # optimisation
    epochs: int = 3
    max_steps: int | None = None               # stop after this many optimizer steps (the schedule spans them)
    lr: float = 2e-4
    scheduler: str = "cosine"                  # any transformers scheduler name: cosine, linear, constant_with_warmup...
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    batch_size: int = 2                        # rows per micro-batch on each process
    grad_accum: int = 1
    seed: int = 0
    # data
    max_len: int = 1024                        # tokens per example and per packed row
    overlong: str = "truncate"                 # truncate | drop
    packing: bool = True
    erase_prompt: bool = False                 # Orca 2 prompt erasing: train under a generic system message
    generic_system: str = GENERIC_SYSTEM
    eval_fraction: float = 0.1
    eval_max: int = 200
    # speed
    precision: str = "auto"                    # auto: bf16 on a GPU that has it, else fp32 | bf16 | fp32
    grad_checkpointing: bool = False
    attn: str = "auto"                         # auto: flash_attention_2 if installed on GPU, else packed | sdpa | eager
    liger: str = "auto"                        # auto: Liger kernels when liger-kernel is installed | off
    # evaluation and output
    samples: int = 3                           # held-out instructions answered by the base and the tuned student
    sample_max_tokens: int = 128
    checkpoint_every: int = 50                 # optimizer steps between checkpoints (one is also written at the end)
    keep_checkpoints: int = 2
    log_every: int = 1
    merge: bool = False

    def validate(self) -> "TrainConfig":
        checks = [
            (bool(self.data), "a dataset is needed: pass a synth run folder or an exported file"),
            (self.lora_r >= 1, "--lora-r must be at least 1"),
            (self.lora_alpha > 0, "--lora-alpha must be positive"),
            (0.0 <= self.lora_dropout < 1.0, "--lora-dropout must be in [0, 1)"),
            (self.qlora in ("auto", "on", "off"), "--qlora must be auto, on or off"),
            (self.epochs >= 1, "--epochs must be at least 1"),
            (self.max_steps is None or self.max_steps >= 1, "--max-steps must be at least 1"),
            (self.lr > 0, "--lr must be positive"),
            (self.scheduler in SCHEDULERS, f"--scheduler must be one of {', '.join(SCHEDULERS)}"),
            (bool(self.target_modules) and all(self.target_modules), "--target-modules needs at least one layer name"),
            (0.0 <= self.warmup_ratio < 1.0, "--warmup-ratio must be in [0, 1)"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.grad_accum >= 1, "--grad-accum must be at least 1"),
            (self.max_len >= 16, "--max-len must be at least 16"),
            (self.overlong in ("truncate", "drop"), "--overlong must be truncate or drop"),
            (0.0 <= self.eval_fraction < 1.0, "--eval-fraction must be in [0, 1)"),
            (self.precision in ("auto", "bf16", "fp32"), "--precision must be auto, bf16 or fp32"),
            (self.attn in ATTENTION, f"--attn must be one of {', '.join(ATTENTION)}"),
            (self.liger in ("auto", "off"), "--liger must be auto or off"),
            (self.samples >= 0, "--samples cannot be negative"),
            (self.checkpoint_every >= 1, "--checkpoint-every must be at least 1"),
            (self.keep_checkpoints >= 1, "--keep-checkpoints must be at least 1"),
            (self.log_every >= 1, "--log-every must be at least 1"),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ConfigError("; ".join(problems))
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "TrainConfig":
        return from_dict(cls, values, source)

    def merged(self, overrides: dict[str, Any]) -> "TrainConfig":
        """A copy with every override that is not None applied."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return TrainConfig.from_dict({**self.to_dict(), **given}, "flags")

    def save(self, folder: Path) -> None:
        path = Path(folder) / CONFIG_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, folder: str | Path) -> "TrainConfig":
        path = Path(folder) / CONFIG_FILE
        if not path.is_file():
            from ..errors import RunFolderError

            raise RunFolderError(f"{folder} is not a synth train output folder (no {CONFIG_FILE}); nothing to resume")
        return cls.from_dict(load_config_file(path), str(path))
