"""The one config type of `synth eval`: the judge's call settings (every one a flag) and the evaluation's own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..errors import RunFolderError
from ..settings import load_config_file, setting
from ..teacher.session import LOCAL, CallSettings

CONFIG_FILE = "eval_config.json"
AGAINST = ("base", "teacher")
BACKENDS = ("auto", "transformers", "vllm")
# settings that change how the work is done, not its outcome: a rerun on the same folder may change them
RESUMABLE = {"api_base", "concurrency", "rpm", "tpm", "max_retries", "timeout", "max_cost", "max_outage", "cache",
             "input_cost", "output_cost", "batch_size", "out", "backend"}


@dataclass
class EvalConfig(CallSettings):
    command: ClassVar[str] = "eval"

    students: list[str] = setting(help="One student (tuned against its base or the references) or two (head to "
                                       "head): synth train output folders.", factory=list, cli=False)
    judge: str = setting(LOCAL, "The judge: any litellm model string; local is the embedded SmolLM2 (weak, for "
                                "trying synth offline).")
    against: str = setting("base", "With one student: compare its tuned answers with its base model's (base) or "
                                   "with the tasks' reference answers (teacher).", choices=AGAINST)
    tasks: str | None = setting(None, "Prompts: any dataset synth reads, or 'bundled' for evals/heldout.jsonl "
                                      "(default: the student's held-out split, else the bundled set).")
    limit: int | None = setting(None, "Evaluate at most this many prompts (a seeded sample).", min=1)
    max_new_tokens: int = setting(256, "Tokens per student answer.", min=1, max=32768)
    batch_size: int = setting(8, "Prompts decoded together.", min=1, max=4096)
    precision: str = setting("auto", "auto (bf16 on a GPU that has it, else fp32), bf16 or fp32.",
                             choices=("auto", "bf16", "fp32"))
    backend: str = setting("auto", "auto (vLLM when installed and a GPU is there, else transformers), "
                                   "transformers or vllm.", choices=BACKENDS)
    seed: int = setting(0, "Seed for --limit's sample and the bootstrap interval.", min=0)
    out: str | None = setting(None, "Output folder (default STUDENT/evals/NAME).")
    # the judge answers deterministically and needs room for its reasons and the verdict line
    temperature: float = setting(0.0, "The judge's sampling temperature.", min=0, max=2)
    max_tokens: int = setting(512, "Completion tokens per judge call.", min=16, max=1_000_000)

    def checks(self) -> list[str]:
        problems = super().checks()
        if len(self.students) not in (1, 2):
            problems.append("pass one student (tuned against base or teacher) or two (head to head)")
        if len(self.students) == 2 and self.against != "base":
            problems.append("--against compares one student with its base or the references; two students are "
                            "compared with each other, so leave --against out")
        return problems

    @property
    def mode(self) -> str:
        """"base" (tuned vs base), "teacher" (tuned vs the references) or "students" (head to head)."""
        return "students" if len(self.students) == 2 else self.against

    def save(self, folder: str | Path) -> None:     # noqa: D102  (the file name is fixed inside the output folder)
        super().save(Path(folder) / CONFIG_FILE)

    @classmethod
    def load(cls, folder: str | Path) -> "EvalConfig":
        path = Path(folder) / CONFIG_FILE
        if not path.is_file():
            raise RunFolderError(f"{folder} is not a synth eval folder (no {CONFIG_FILE})")
        return cls.from_dict(load_config_file(path), str(path))
