"""The one config type of `synth generate`: typed, validated, printed at start and saved into the run folder.

Precedence: defaults < a config file (or the run folder's saved config on --resume) < flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..gate.embeddings import DEFAULT_EMBEDDER
from ..settings import setting
from ..teacher.session import LOCAL as LOCAL_TEACHER
from ..teacher.session import CallSettings
from ..quality.signals import DEGENERATE, SIGNALS
from .filters import DEFAULT_BLACKLIST

METHODS = ("self-instruct", "evol", "magpie")


@dataclass
class GenerateConfig(CallSettings):
    command: ClassVar[str] = "generate"

    out: str = setting("runs/default", "Run folder to create.")
    method: str = setting("self-instruct", "How new tasks are made: self-instruct (bootstrap from seeds), evol "
                                           "(Evol-Instruct rounds over the seeds) or magpie (queries the model "
                                           "writes from its own chat template).", choices=METHODS)
    rounds: int = setting(3, "Evol-Instruct: rounds of mutation.", min=1, max=50)
    personas: str | None = setting(None, "Self-Instruct: a persona leads each bootstrap prompt; a file of personas "
                                         "or 'builtin'.")
    chat_template: str | None = setting(None, "Magpie: the model's tokenizer folder, or a .jinja chat template "
                                              "(default: the embedded teacher's own).")
    teacher: str = setting(LOCAL_TEACHER, "Any litellm model string (gpt-4o, claude-..., ollama/..., openai/NAME "
                                          "with --api-base); 'local' for the embedded SmolLM2 teacher.")
    seeds: str | None = setting(None, "Seed tasks: any dataset synth reads (default: the bundled seeds).")
    queries: str | None = setting(None, "Explanation mode: answer these queries instead of bootstrapping new tasks.")
    num: int | None = setting(None, "Records to make (default 100; in explanation mode, every query).", min=1)
    seed: int = setting(0, "Random seed for example and system-message choice.", min=0)
    # bootstrap
    prompt_seed_tasks: int = setting(6, "Seed tasks shown in each bootstrap prompt.", min=0, max=64)
    prompt_machine_tasks: int = setting(2, "Machine-made tasks shown in each bootstrap prompt.", min=0, max=64)
    new_tasks_per_prompt: int = setting(8, "New tasks asked for by each bootstrap prompt.", min=1, max=100)
    instances_per_task: int = setting(2, "Instances (and so records) per new task.", min=1, max=20)
    max_idle_rounds: int = setting(30, "Bootstrap prompts in a row that add no task before the run stalls.", min=1)
    # filters and gate
    min_words: int = setting(4, "Shortest task instruction kept, in words.", min=1)
    max_words: int = setting(150, "Longest task instruction kept, in words.", min=1)
    blacklist: list[str] = setting(help="Words that reject a task (comma-separated).", factory=lambda: list(DEFAULT_BLACKLIST))
    banned_prefixes: list[str] = setting(help="Starts that reject a task (comma-separated).",
                                         factory=lambda: ["Write a program"])
    novelty_threshold: float = setting(0.9, "Reject a task this cosine-similar to the pool.", min=0, min_open=True, max=1)
    recall_threshold: float = setting(0.4, "Lower edge of the band a --verifier judges.", min=0, max=1)
    verifier: str | None = setting(None, "litellm model asked 'same task?' for candidates in the borderline band.")
    novelty_index: str = setting("auto", "auto (exact up to 1M tasks, HNSW beyond), flat or hnsw.",
                                 choices=("auto", "flat", "hnsw"))
    embedder: str = setting(DEFAULT_EMBEDDER, "sentence-transformers model folder for the gate (default: bundled MiniLM).")
    decontaminate: list[str] = setting(help="Benchmarks whose items new tasks must not copy (comma-separated: names "
                                            "such as gsm8k, or local files); a match is rejected as "
                                            "contaminated:<benchmark>.", factory=list)
    # quality
    signals: bool = setting(True, "Compute the free quality signals on every record (stored with it).")
    signal_filter: list[str] = setting(help="Signals that reject a record; the others only flag it (comma-separated; "
                                            "empty: flag only).", factory=lambda: sorted(DEGENERATE))
    signal_config: str | None = setting(None, "A JSON file of signal thresholds (the fields of SignalConfig).")
    judge: str | None = setting(None, "A litellm model that scores each answer as it arrives (synth judge's quality "
                                      "rubric); verdicts go to RUN/scores.jsonl.")
    min_quality: int | None = setting(None, "With --judge: reject answers scored below this (1-5) as low_quality.",
                                      min=1, max=5)
    strong_teacher: str | None = setting(None, "A stronger model that re-answers a subset (see --strong-when); both "
                                               "answers are kept, the record uses the strong one.")
    side_api_base: str | None = setting(None, "OpenAI-compatible server of the --judge and --strong-teacher when "
                                              "they are openai/ models (default: --api-base).")
    strong_when: str = setting("low_quality", "Which answers the strong teacher redoes: low_quality (judged below "
                                              "--min-quality, or 4), complex (the judge rates the task 4+ of 6), or "
                                              "fraction:0.2 (a seeded share).")
    # batch APIs
    batch: bool = setting(False, "Send every request through the provider's batch API (OpenAI, or a server with "
                                 "/v1/files and /v1/batches) at its discount; the run goes in rounds of jobs.")
    batch_size: int = setting(50_000, "Most requests in one batch job (OpenAI's limit by default).", min=1,
                              max=1_000_000)
    batch_discount: float = setting(0.5, "Share of the online price a batch saves, where litellm has no batch "
                                         "price for the model.", min=0, max=1)
    batch_poll: float = setting(30.0, "Seconds between looks at a batch job's state.", min=0, min_open=True)
    batch_window: str = setting("24h", "The batch jobs' completion window.")
    def _review_checks(self) -> list[str]:
        problems = []
        if self.min_quality is not None and not self.judge:
            problems.append("--min-quality needs a --judge to score the answers")
        when = self.strong_when
        if when.startswith("fraction:"):
            try:
                share = float(when.split(":", 1)[1])
            except ValueError:
                share = -1.0
            if not 0 < share <= 1:
                problems.append(f"--strong-when {when}: the fraction must be in (0, 1]")
        elif when not in ("low_quality", "complex"):
            problems.append(f"--strong-when must be low_quality, complex or fraction:SHARE, not {when!r}")
        elif self.strong_teacher and not self.judge:
            problems.append(f"--strong-when {when} needs a --judge to decide which answers to redo")
        return problems

    @property
    def most_in_flight(self) -> int:
        """Requests the pipeline keeps in flight: a whole batch job's worth in batch mode."""
        return min(self.batch_size, 100_000) if self.batch else super().most_in_flight

    def checks(self) -> list[str]:
        problems = super().checks()
        problems += self._review_checks()
        unknown = sorted(set(self.signal_filter) - set(SIGNALS))
        if unknown:
            problems.append(f"--signal-filter: unknown signal(s) {', '.join(unknown)}; the signals are {', '.join(SIGNALS)}")
        if self.personas and self.method != "self-instruct":
            problems.append("--personas lead Self-Instruct's bootstrap prompts: use them with --method self-instruct")
        if self.method == "magpie" and self.queries:
            problems.append("--method magpie writes its own queries: leave --queries out")
        if self.batch and self.teacher == LOCAL_TEACHER:
            problems.append("--batch needs a provider or a server with a batch API (/v1/batches); the embedded "
                            "teacher has none: give --teacher (and --api-base)")
        if self.prompt_seed_tasks + self.prompt_machine_tasks < 1:
            problems.append("a bootstrap prompt needs at least one example task: raise --prompt-seed-tasks")
        if self.min_words > self.max_words:
            problems.append(f"--min-words ({self.min_words}) must be at most --max-words ({self.max_words})")
        if self.recall_threshold > self.novelty_threshold:
            problems.append("--recall-threshold must be at most --novelty-threshold")
        for name in ("out", "teacher"):
            if not getattr(self, name).strip():
                problems.append(f"--{name} cannot be empty")
        return problems
