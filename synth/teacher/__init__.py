"""The teacher layer, shared by the teacher, the verifier and every judge: one litellm client with a request cache,
one retry layer, an outage breaker, rate limits, a spend ledger with a hard cap, and the embedded local model."""

from .base import Completion, Teacher, TeacherOptions, check_api_key
from .client import LiteLLMTeacher
from .local import LocalTeacherServer

__all__ = ["Completion", "Teacher", "LiteLLMTeacher", "TeacherOptions", "check_api_key", "LocalTeacherServer"]
