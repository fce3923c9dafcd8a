"""`synth eval`: did the student get better? Its answers against its base, the references or another student,
judged pairwise in both orders, with intervals, a length-aware view and the judge's position bias."""

from .api import EvalResult, evaluate
from .config import EvalConfig

__all__ = ["EvalConfig", "EvalResult", "evaluate"]
