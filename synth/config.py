"""The one config type of `synth generate`: typed, validated, saved into the run folder.

Precedence: defaults < a config file (or the run folder's saved config on --resume) < flags.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .embeddings import DEFAULT_EMBEDDER
from .errors import ConfigError
from .filters import DEFAULT_BLACKLIST
from .settings import from_dict

LOCAL_TEACHER = "local"


@dataclass
class GenerateConfig:
    out: str = "runs/default"
    teacher: str = LOCAL_TEACHER
    api_base: str | None = None
    seeds: str | None = None                   # None: the bundled seeds/general.jsonl
    queries: str | None = None                 # explanation mode: answer these queries instead of bootstrapping
    num: int | None = None                     # records to make; None: 100, or every query in explanation mode
    seed: int = 0
    # bootstrap
    prompt_seed_tasks: int = 6
    prompt_machine_tasks: int = 2
    new_tasks_per_prompt: int = 8
    instances_per_task: int = 2
    # filters and gate
    min_words: int = 4
    max_words: int = 150
    blacklist: list[str] = field(default_factory=lambda: list(DEFAULT_BLACKLIST))
    banned_prefixes: list[str] = field(default_factory=lambda: ["Write a program"])
    novelty_threshold: float = 0.9
    recall_threshold: float = 0.4              # with a verifier: the borderline band [recall, novelty) goes to it
    verifier: str | None = None                # a litellm model that judges "same task?" in the band; None: off
    novelty_index: str = "auto"                # auto | flat | hnsw
    embedder: str = DEFAULT_EMBEDDER
    # teacher calls
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 1024
    concurrency: int = 16
    rpm: int | None = None
    tpm: int | None = None
    max_retries: int = 5
    timeout: float = 120.0
    max_cost: float | None = None
    input_cost: float | None = None            # USD per million prompt tokens; None: litellm's price map
    output_cost: float | None = None           # USD per million completion tokens
    max_outage: float = 600.0                  # seconds every attempt may fail before the run stops (resumable)
    cache: str | None = None                   # None: <out>/cache.sqlite
    max_idle_rounds: int = 30                  # bootstrap prompts in a row that add no task before giving up

    def validate(self) -> "GenerateConfig":
        checks = [
            (self.num is None or self.num >= 1, "--num must be at least 1"),
            (self.concurrency >= 1, "--concurrency must be at least 1"),
            (0.0 < self.novelty_threshold <= 1.0, "--novelty-threshold must be in (0, 1]"),
            (self.prompt_seed_tasks + self.prompt_machine_tasks >= 1, "a bootstrap prompt needs at least one example task"),
            (self.new_tasks_per_prompt >= 1, "--new-tasks-per-prompt must be at least 1"),
            (self.instances_per_task >= 1, "--instances-per-task must be at least 1"),
            (self.max_tokens >= 16, "--max-tokens must be at least 16"),
            (self.timeout > 0, "--timeout must be positive"),
            (self.max_retries >= 0, "--max-retries cannot be negative"),
            (self.max_cost is None or self.max_cost >= 0, "--max-cost cannot be negative"),
            ((self.input_cost is None) == (self.output_cost is None), "--input-cost and --output-cost go together"),
            (min(self.input_cost or 0, self.output_cost or 0) >= 0, "--input-cost and --output-cost cannot be negative"),
            (self.max_outage > 0, "--max-outage must be positive"),
            (self.rpm is None or self.rpm >= 1, "--rpm must be at least 1"),
            (self.tpm is None or self.tpm >= 1, "--tpm must be at least 1"),
            (0 < self.min_words <= self.max_words, "--min-words must be positive and at most --max-words"),
            (0.0 <= self.recall_threshold <= self.novelty_threshold, "--recall-threshold must be in [0, --novelty-threshold]"),
            (self.novelty_index in ("auto", "flat", "hnsw"), "--novelty-index must be auto, flat or hnsw"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "GenerateConfig":
        return from_dict(cls, values, source)

    def merged(self, overrides: dict[str, Any]) -> "GenerateConfig":
        """A copy with every override that is not None applied."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return GenerateConfig.from_dict({**self.to_dict(), **given}, "flags")
