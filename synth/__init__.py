"""synth: explained instruction-tuning data from teacher LLMs (Self-Instruct + Orca), gated for novelty.

The package reads like the pipeline:

    formats/     the one reader and writer of datasets (every shape users bring, and the export formats)
    teacher/     the teacher layer: litellm client, retries, outage breaker, cache, budget, rate limits, embedded model
    generation/  seeds -> bootstrap -> filters -> gate -> instances -> Orca answer -> run folder
    gate/        embeddings, the novelty index, the verifier, and dedup built on them
    decontam/    benchmark decontamination: benchmarks, n-gram index, embedding and verifier stages
    quality/     free quality signals, the LLM judge and its scores, selection of the best subset
    report/      numbers, plots, card and page for a run
    training/    the LoRA SFT recipe
    evaluation/  did the student get better: batched answers, a pairwise judge in both orders, win rates
    cli/         one thin module per command
"""

from ._version import __version__
from .errors import (BudgetExceeded, ConfigError, FatalTeacherError, InputFileError, MissingKeyError, SynthError,
                     TeacherError, TeacherOutageError)
from .formats import read_rows, write_rows
from .formats.export import FORMATS, export, load_records
from .gate.embeddings import Embedder, EmbeddingStore
from .gate.verifier import EmbeddingVerifier, LLMVerifier, llm_verifier
from .generation import GenerateConfig, RunResult, generate, load_seeds
from .records import validate_record
from .tasks import Task
from .teacher import Completion, LiteLLMTeacher, LocalTeacherServer, TeacherOptions

# Names whose modules pull in faiss, matplotlib or torch load on first use, so `import synth` stays light.
_LAZY = {
    "dedup": ".gate.dedup", "DedupConfig": ".gate.dedup", "DedupResult": ".gate.dedup",
    "NoveltyGate": ".gate.novelty", "Verdict": ".gate.novelty", "Verifier": ".gate.novelty",
    "INDEX_KINDS": ".gate.novelty",
    "build_report": ".report", "ReportPaths": ".report", "ReportConfig": ".report",
    "train": ".training", "TrainConfig": ".training", "TrainResult": ".training", "TrainingError": ".training",
    "judge": ".quality.judge", "JudgeConfig": ".quality.judge", "JudgeResult": ".quality.judge",
    "load_scores": ".quality.scores",
    "decontaminate": ".decontam", "DecontamConfig": ".decontam", "DecontamResult": ".decontam",
    "Decontaminator": ".decontam",
    "select": ".quality.select", "SelectConfig": ".quality.select", "SelectResult": ".quality.select",
    "select_rows": ".quality.select", "SignalConfig": ".quality.signals", "check_response": ".quality.signals",
    "record_signals": ".quality.signals",
    "evaluate": ".evaluation", "EvalConfig": ".evaluation", "EvalResult": ".evaluation",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'synth' has no attribute {name!r}")


__all__ = [
    "__version__", "GenerateConfig", "generate", "RunResult", "export", "load_records", "FORMATS", "load_seeds",
    "read_rows", "write_rows", "Task", "LiteLLMTeacher", "TeacherOptions", "Completion", "NoveltyGate", "Verdict",
    "Embedder", "LocalTeacherServer", "validate_record", "SynthError", "ConfigError", "InputFileError",
    "MissingKeyError", "TeacherError", "FatalTeacherError", "TeacherOutageError", "BudgetExceeded", "dedup",
    "DedupConfig", "DedupResult", "EmbeddingStore", "INDEX_KINDS", "Verifier", "LLMVerifier", "EmbeddingVerifier",
    "llm_verifier", "build_report", "ReportPaths", "ReportConfig", "train", "TrainConfig", "TrainResult",
    "TrainingError", "judge", "JudgeConfig", "JudgeResult", "load_scores", "decontaminate", "DecontamConfig",
    "DecontamResult", "Decontaminator", "select", "SelectConfig", "SelectResult", "select_rows", "SignalConfig",
    "check_response", "record_signals", "evaluate", "EvalConfig", "EvalResult",
]
