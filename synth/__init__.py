"""synth: explained instruction-tuning data from teacher LLMs (Self-Instruct + Orca), gated for novelty."""

from ._version import __version__
from .config import GenerateConfig
from .embeddings import Embedder
from .errors import (BudgetExceeded, ConfigError, FatalTeacherError, InputFileError, MissingKeyError, SynthError,
                     TeacherError)
from .export import FORMATS, export, load_records
from .dedup import DedupConfig, DedupResult, dedup
from .embeddings import EmbeddingStore
from .gate import INDEX_KINDS, NoveltyGate, Verdict, Verifier
from .report import ReportPaths, build_report
from .verifier import EmbeddingVerifier, LLMVerifier, llm_verifier
from .generate import generate
from .local_teacher import LocalTeacherServer
from .pipeline import RunResult
from .records import validate_record
from .seeds import load_seeds
from .tasks import Task
from .teacher import Completion, LiteLLMTeacher, TeacherOptions

__all__ = [
    "__version__", "GenerateConfig", "generate", "RunResult", "export", "load_records", "FORMATS", "load_seeds",
    "Task", "LiteLLMTeacher", "TeacherOptions", "Completion", "NoveltyGate", "Verdict", "Embedder",
    "LocalTeacherServer", "validate_record", "SynthError", "ConfigError", "InputFileError", "MissingKeyError",
    "TeacherError", "FatalTeacherError", "BudgetExceeded", "dedup", "DedupConfig", "DedupResult", "EmbeddingStore",
    "INDEX_KINDS", "Verifier", "LLMVerifier", "EmbeddingVerifier", "llm_verifier", "build_report", "ReportPaths",
]
