"""The teacher interface: messages and options in, text, finish reason and usage out. The litellm teacher
(client.py) implements it for every provider, the embedded model included."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ConfigError, MissingKeyError
from .breaker import DEFAULT_MAX_OUTAGE
from .pool import PLACEHOLDER_KEY

# litellm would otherwise fetch its price map from the network at import; the packaged copy is used instead.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@dataclass
class Completion:
    text: str
    finish_reason: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    cached: bool = False
    attempts: int = 1

    @property
    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


class Teacher(Protocol):
    model: str

    async def complete(self, messages: list[dict[str, str]]) -> Completion: ...


@dataclass
class TeacherOptions:
    model: str
    api_base: str | None = None
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 1024
    concurrency: int = 16                 # requests in flight; with `adaptive`, the most it may grow to
    adaptive: bool = False                # --concurrency auto: AIMD on 429s and rising latency (ratelimit.py)
    endpoints: list[str] = field(default_factory=list)   # a fleet of servers for one model; empty: api_base alone
    rpm: int | None = None
    tpm: int | None = None
    max_retries: int = 5
    timeout: float = 120.0            # hard deadline for one attempt, in seconds
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_outage: float = DEFAULT_MAX_OUTAGE   # seconds the outage breaker may stay open before the run stops
    input_cost: float | None = None       # USD per million prompt tokens; None: litellm's price map
    output_cost: float | None = None      # USD per million completion tokens
    cache_label: str | None = None        # stands for api_base in the cache key (the local teacher's port changes)
    client: str = "litellm"               # or "openai": synth's own wire client for OpenAI-compatible servers (wire.py)
    purpose: str = "teacher"              # who asks ("teacher", "verifier"): the spend ledger books usage by it
    extra: dict[str, Any] = field(default_factory=dict)   # further litellm parameters, part of the cache key


def check_api_key(model: str, api_base: str | None, client: str = "litellm") -> str | None:
    """Raise MissingKeyError when the provider's key variable is unset; return a placeholder key for
    self-hosted servers (--api-base) that need none. The wire client (--client openai) speaks to a server at
    --api-base with OPENAI_API_KEY when it is set, else with the placeholder."""
    if client == "openai":
        if not api_base:
            raise ConfigError("--client openai speaks to an OpenAI-compatible server: give its --api-base, or use "
                              "--client litellm for a hosted provider")
        return None
    import litellm

    litellm.suppress_debug_info = True
    try:
        litellm.get_llm_provider(model=model, api_base=api_base)
    except Exception:
        raise ConfigError(f"litellm cannot tell which provider serves {model!r}: name it as provider/model "
                          "(openai/NAME with --api-base for an OpenAI-compatible server, anthropic/..., ollama/...)") from None
    status = litellm.validate_environment(model=model, api_base=api_base)
    missing = [k for k in status.get("missing_keys", []) if ("KEY" in k or "TOKEN" in k) and not os.environ.get(k)]
    if not missing:
        return None
    if api_base:
        return PLACEHOLDER_KEY
    raise MissingKeyError(missing, model)
