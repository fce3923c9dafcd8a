"""The one config type of `synth train`: typed, validated, printed at start and saved in the output folder.

Precedence: defaults < a config file (or the saved config on --resume) < flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..errors import RunFolderError
from ..settings import Settings, load_config_file, setting

DEFAULT_STUDENT = "default"
CONFIG_FILE = "train_config.json"
GENERIC_SYSTEM = "You are a helpful assistant."
ATTENTION = ("auto", "packed", "sdpa", "eager", "flash_attention_2")
# transformers' schedulers that need nothing beyond warm-up and total steps
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial", "inverse_sqrt")


@dataclass
class TrainConfig(Settings):
    command: ClassVar[str] = "train"

    data: str = setting("", "A synth run folder or any dataset synth reads (JSON, JSONL, .gz, Parquet, hf folder).", cli=False)
    out: str = setting("students/default", "Output folder for the adapter, samples and metrics.")
    student: str = setting(DEFAULT_STUDENT, "A local Hugging Face causal-LM folder (default: the embedded SmolLM2-135M-Instruct).")
    # LoRA
    lora_r: int = setting(16, "LoRA rank.", min=1, max=4096)
    lora_alpha: int = setting(32, "LoRA alpha.", min=1)
    lora_dropout: float = setting(0.05, "LoRA dropout.", min=0, max=0.999)
    target_modules: list[str] = setting(help="Comma-separated module names, or all-linear.", factory=lambda: ["all-linear"])
    qlora: str = setting("auto", "auto (4-bit base when bitsandbytes and a GPU exist), on or off.", choices=("auto", "on", "off"))
    # optimisation
    epochs: int = setting(3, "Passes over the data.", min=1)
    max_steps: int | None = setting(None, "Stop after this many optimizer steps instead (the schedule spans them).", min=1)
    lr: float = setting(2e-4, "Peak learning rate.", min=0, min_open=True, max=10)
    scheduler: str = setting("cosine", "Learning-rate schedule.", choices=SCHEDULERS)
    warmup_ratio: float = setting(0.05, "Share of the steps spent warming up.", min=0, max=0.999)
    weight_decay: float = setting(0.0, "AdamW weight decay.", min=0)
    max_grad_norm: float = setting(1.0, "Gradient clipping norm.", min=0, min_open=True)
    batch_size: int = setting(2, "Packed rows per micro-batch per process.", min=1)
    grad_accum: int = setting(1, "Micro-batches per optimizer step.", min=1)
    seed: int = setting(0, "Seed for the split, the data order and LoRA init.", min=0)
    # data
    max_len: int = setting(1024, "Tokens per example and per packed row.", min=16)
    overlong: str = setting("truncate", "What to do with longer examples.", choices=("truncate", "drop"))
    packing: bool = setting(True, "Pack several examples per row.")
    erase_prompt: bool = setting(False, "Train under a generic system message (Orca 2 prompt erasing).")
    generic_system: str = setting(GENERIC_SYSTEM, "The system message used with --erase-prompt.")
    select: int | None = setting(None, "Train on only the best N rows, chosen as `synth select` chooses them.", min=1)
    select_strategy: str = setting("deita", "How --select chooses: deita, quality, diverse or random.",
                                   choices=("deita", "quality", "diverse", "random"))
    select_scores: str | None = setting(None, "Judge scores for --select (default: where `synth judge` writes them).")
    eval_fraction: float = setting(0.1, "Share of examples held out for eval loss and samples.", min=0, max=0.999)
    eval_max: int = setting(200, "Most examples held out.", min=1)
    # speed
    precision: str = setting("auto", "auto (bf16 on a GPU that has it, else fp32), bf16 or fp32.", choices=("auto", "bf16", "fp32"))
    grad_checkpointing: bool = setting(False, "Trade compute for memory.")
    attn: str = setting("auto", "auto (flash_attention_2 when installed on a GPU, else packed: synth's mask-free "
                                "packed attention), packed, sdpa, eager or flash_attention_2.", choices=ATTENTION)
    liger: str = setting("auto", "auto (Liger kernels when liger-kernel is installed on a GPU) or off.", choices=("auto", "off"))
    # evaluation and output
    samples: int = setting(3, "Held-out prompts answered by the base and the tuned student.", min=0)
    sample_max_tokens: int = setting(128, "Tokens per sample answer.", min=1)
    checkpoint_every: int = setting(50, "Optimizer steps between checkpoints (one is also written at the end).", min=1)
    keep_checkpoints: int = setting(2, "Checkpoints kept.", min=1)
    log_every: int = setting(1, "Optimizer steps between log lines.", min=1)
    merge: bool = setting(False, "Also write the merged full model to OUT/merged.")

    def checks(self) -> list[str]:
        problems = []
        if not self.data:
            problems.append("a dataset is needed: pass a synth run folder or a dataset file")
        if not self.target_modules or not all(m.strip() for m in self.target_modules):
            problems.append("--target-modules needs at least one layer name")
        return problems

    def save(self, folder: str | Path) -> None:     # noqa: D102  (the file name is fixed inside the output folder)
        super().save(Path(folder) / CONFIG_FILE)

    @classmethod
    def load(cls, folder: str | Path) -> "TrainConfig":
        path = Path(folder) / CONFIG_FILE
        if not path.is_file():
            raise RunFolderError(f"{folder} is not a synth train output folder (no {CONFIG_FILE}); nothing to resume")
        return cls.from_dict(load_config_file(path), str(path))
