"""synth: explained instruction-tuning data from teacher LLMs (Self-Instruct + Orca), gated for novelty."""

from ._version import __version__
from .config import GenerateConfig
from .embeddings import Embedder, EmbeddingStore
from .errors import (BudgetExceeded, ConfigError, FatalTeacherError, InputFileError, MissingKeyError, SynthError,
                     TeacherError, TeacherOutageError)
from .export import FORMATS, export, load_records
from .verifier import EmbeddingVerifier, LLMVerifier, llm_verifier
from .generate import generate
from .local_teacher import LocalTeacherServer
from .pipeline import RunResult
from .records import validate_record
from .seeds import load_seeds
from .tasks import Task
from .teacher import Completion, LiteLLMTeacher, TeacherOptions

# Names whose modules pull in faiss or matplotlib load on first use, so `import synth` stays light.
_LAZY = {
    "dedup": ".dedup", "DedupConfig": ".dedup", "DedupResult": ".dedup",
    "NoveltyGate": ".gate", "Verdict": ".gate", "Verifier": ".gate", "INDEX_KINDS": ".gate",
    "build_report": ".report", "ReportPaths": ".report",
    "train": ".training", "TrainConfig": ".training", "TrainResult": ".training", "TrainingError": ".training",
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
    "Task", "LiteLLMTeacher", "TeacherOptions", "Completion", "NoveltyGate", "Verdict", "Embedder",
    "LocalTeacherServer", "validate_record", "SynthError", "ConfigError", "InputFileError", "MissingKeyError",
    "TeacherError", "FatalTeacherError", "TeacherOutageError", "BudgetExceeded", "dedup", "DedupConfig", "DedupResult", "EmbeddingStore",
    "INDEX_KINDS", "Verifier", "LLMVerifier", "EmbeddingVerifier", "llm_verifier", "build_report", "ReportPaths",
    "train", "TrainConfig", "TrainResult", "TrainingError",
]
