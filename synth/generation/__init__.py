"""Making records: seeds -> bootstrap -> filters -> novelty gate -> classify -> instances -> Orca answer -> run folder."""

from .api import generate
from .config import GenerateConfig
from .pipeline import RunResult
from .seeds import load_seeds

__all__ = ["generate", "GenerateConfig", "RunResult", "load_seeds"]
