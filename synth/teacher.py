"""The teacher layer: one small interface, implemented over litellm for every provider.

A call is cached by a hash of the whole request, budgeted before it is sent, bounded by a
concurrency limit and optional RPM/TPM limits, given a hard deadline per attempt, and retried
(one retry layer, ours) on transient failures with exponential backoff, jitter and Retry-After.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from .budget import Budget, Prices
from .breaker import DEFAULT_MAX_OUTAGE, OutageBreaker
from .cache import RequestCache, request_key
from .errors import ConfigError, FatalTeacherError, MissingKeyError, StopRequested, TeacherError, TransientTeacherError
from .ratelimit import WindowLimiter
from .retry import classify, retry_after_seconds

PLACEHOLDER_KEY = "sk-no-key-needed"
POOL_SHARD = 16      # connections per HTTP pool
# The raw body of the reply being read in this task: litellm fills a missing finish_reason with "stop",
# so an OpenAI-compatible reply is checked as the server sent it.
_RAW_BODIES: contextvars.ContextVar[list[bytes] | None] = contextvars.ContextVar("synth_raw_bodies", default=None)

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
    concurrency: int = 16
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
    purpose: str = "teacher"              # who asks ("teacher", "verifier"): the spend ledger books usage by it
    extra: dict[str, Any] = field(default_factory=dict)   # further litellm parameters, part of the cache key


@dataclass
class _Bill:
    """One request's attempts, and every reply the server charged for, usable or not: a cut reply is paid too."""

    attempts: int = 0
    costs: list[float] = field(default_factory=list)


@dataclass
class Usage:
    """Running totals for the manifest."""

    calls: int = 0
    cached_calls: int = 0
    attempts: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


def check_api_key(model: str, api_base: str | None) -> str | None:
    """Raise MissingKeyError when the provider's key variable is unset; return a placeholder key for
    self-hosted servers (--api-base) that need none."""
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


class LiteLLMTeacher:
    def __init__(self, options: TeacherOptions, *, cache: RequestCache | None = None,
                 budget: Budget | None = None, api_key: str | None = None, check_key: bool = True):
        import litellm

        litellm.suppress_debug_info = True
        litellm.drop_params = True
        self._litellm = litellm
        self.options = options
        self.model = options.model
        self.cache = cache
        self.budget = budget or Budget()
        self.usage = Usage()
        self._api_key = api_key if api_key is not None else (check_api_key(options.model, options.api_base) if check_key else None)
        self.stopping = False        # set on Ctrl-C/SIGTERM: nothing new is sent, calls in flight finish
        self._answered = False       # the server has answered at least once (any HTTP reply)
        self._refusals = 0
        self._openai_compatible = self._provider() == "openai"
        self._clients: list = []
        self._shard_load: list[int] = []
        self._client_loop = None
        self.prices = Prices(options.model, options.input_cost, options.output_cost)
        self.breaker = OutageBreaker(threshold=max(3, min(12, options.concurrency // 4)), max_outage=options.max_outage)
        self._slots = asyncio.Semaphore(options.concurrency)
        self._rpm = WindowLimiter(options.rpm) if options.rpm else None
        self._tpm = WindowLimiter(options.tpm) if options.tpm else None

    def request(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """The full request, as sent. Holds no secret."""
        o = self.options
        req = {"model": o.model, "messages": messages, "temperature": o.temperature, "top_p": o.top_p,
               "max_tokens": o.max_tokens, **o.extra}
        if o.api_base:
            req["api_base"] = o.api_base
        return req

    def cache_key(self, request: dict[str, Any]) -> str:
        """The hash of the whole request, with the cache label (if any) in place of the api base."""
        if self.options.cache_label:
            request = {**request, "api_base": self.options.cache_label}
        return request_key(request)

    async def complete(self, messages: list[dict[str, str]]) -> Completion:
        request = self.request(messages)
        key = self.cache_key(request)
        self.usage.calls += 1
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            self.usage.cached_calls += 1
            return self._finish(Completion(**{**hit, "cached": True, "cost": 0.0, "attempts": 0}), count=False)
        if self.stopping:
            raise StopRequested("stopping: no new teacher calls")
        ticket = self.budget.reserve(self._estimate_cost(messages))
        bill = _Bill()
        completion = None
        try:
            completion = await self._send_with_retries(request, messages, key, bill)
        finally:
            self.budget.settle(ticket, sum(bill.costs), purpose=self.options.purpose, attempts=bill.attempts,
                               prompt_tokens=completion.prompt_tokens if completion else 0,
                               completion_tokens=completion.completion_tokens if completion else 0)
            self.usage.cost += sum(bill.costs)
        if self.cache is not None:
            self.cache.put(key, {k: v for k, v in completion.__dict__.items() if k not in ("cached", "attempts")})
        return self._finish(completion)

    def _finish(self, completion: Completion, count: bool = True) -> Completion:
        if count:
            self.usage.prompt_tokens += completion.prompt_tokens
            self.usage.completion_tokens += completion.completion_tokens
        if completion.finish_reason in ("length", "content_filter"):
            raise TeacherError(f"finish_{completion.finish_reason}", f"teacher stopped with finish_reason={completion.finish_reason}")
        if completion.finish_reason is None:
            raise TeacherError("no_finish_reason", "teacher reply carried no finish_reason")
        if not completion.text.strip():
            raise TeacherError("empty_response", "teacher reply was empty")
        return completion

    async def _send_with_retries(self, request: dict[str, Any], messages: list[dict[str, str]], key: str,
                                 bill: "_Bill") -> Completion:
        o = self.options
        attempts = 0
        counted = 0     # attempts that count against max_retries: a failed outage probe does not...
        free = 0        # ...up to max_retries of them, so requests that always fail end even when nothing else is left
        retrying = AsyncRetrying(
            stop=lambda state: counted > o.max_retries,
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, TransientTeacherError)),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if self.stopping and attempts:
                        raise StopRequested("stopping: no retry")
                    # The slot is taken before the breaker is asked, so requests queued for a slot cannot all
                    # go out at once when an outage starts: a request paused by the breaker keeps its slot.
                    async with self._slots:
                        probe = await self.breaker.before_attempt()
                        attempts += 1
                        counted += 1
                        self.usage.attempts += 1
                        bill.attempts += 1
                        try:
                            completion = await self._send_once(request, messages, bill)
                        except TransientTeacherError as exc:
                            self._check_reachable(exc)
                            self.breaker.record_failure(probe, key, exc.reason)
                            if probe and free < o.max_retries:
                                free += 1
                                counted -= 1
                            raise
                        except TeacherError:
                            self.breaker.record_success(probe)   # the server answered; it is not down
                            self._answered = True
                            raise
                        self.breaker.record_success(probe)
                        self._answered = True
                    completion.attempts = attempts
                    return completion
        except TeacherError:
            self.usage.failures += 1
            raise
        raise AssertionError("unreachable")

    def _check_reachable(self, error: TransientTeacherError) -> None:
        """A teacher that has never answered and refuses every connection is a wrong address, not an outage:
        stop with one line instead of waiting out --max-outage."""
        if error.reason != "unreachable":
            self._answered = True
            return
        self._refusals += 1
        if not self._answered and self._refusals >= self.breaker.threshold:
            where = self.options.api_base or self.model
            raise FatalTeacherError("unreachable", f"nothing answers at {where}: {error}; check --api-base and that "
                                                   "the server is running, then go on with --resume")

    async def _send_once(self, request: dict[str, Any], messages: list[dict[str, str]], bill: "_Bill") -> Completion:
        o = self.options
        if self._rpm:
            await self._rpm.acquire()
        if self._tpm:
            await self._tpm.acquire(min(o.tpm, self._estimate_tokens(messages) + o.max_tokens))
        bodies: list[bytes] = []
        _RAW_BODIES.set(bodies)
        shard = self._pick_shard() if self._openai_compatible else None
        extra = {"client": self._clients[shard]} if shard is not None else {}
        try:
            response = await asyncio.wait_for(
                self._litellm.acompletion(
                    **request, api_key=self._api_key, timeout=o.timeout, max_retries=0, num_retries=0, **extra,
                ),
                timeout=o.timeout,
            )
        except Exception as exc:  # every failure is sorted by classify(), nothing escapes unclassified
            error = classify(exc)
            error.retry_after = retry_after_seconds(exc)  # type: ignore[attr-defined]
            raise error from None
        finally:
            if shard is not None:
                self._shard_load[shard] -= 1
        completion = self._parse(response)
        bill.costs.append(completion.cost)
        if bodies and _cut_short(bodies[-1]):
            raise TransientTeacherError("no_finish_reason", "teacher reply carried no finish_reason (cut short)")
        return completion

    def _provider(self) -> str | None:
        try:
            return self._litellm.get_llm_provider(self.model, api_base=self.options.api_base)[1]
        except Exception:  # an unknown provider is litellm's to report when the call is made
            return None

    def _pick_shard(self) -> int:
        """The pool with the fewest requests in flight, counted as taken until the caller gives it back.

        Round-robin would queue a request behind a pool whose connections all wait on slow replies while other
        pools sit idle; the least-loaded pool always has a free connection, since no pool is asked for more than
        its share of the concurrency."""
        self._ensure_clients()
        shard = min(range(len(self._shard_load)), key=self._shard_load.__getitem__)
        self._shard_load[shard] += 1
        return shard

    def _ensure_clients(self) -> None:
        """Our own OpenAI clients for OpenAI-compatible servers: SDK retries off, a hook that keeps the raw reply
        body, and the connections split over several small pools, because httpx's pool scans every connection
        on every request and so slows down with the square of a large concurrency."""
        loop = asyncio.get_running_loop()
        if not self._clients or self._client_loop is not loop:
            import httpx
            import openai

            shards = max(1, -(-self.options.concurrency // POOL_SHARD))
            per_shard = -(-self.options.concurrency // shards) + 2
            key = self._api_key or os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_KEY
            self._clients = [
                openai.AsyncOpenAI(api_key=key, base_url=self.options.api_base, max_retries=0, http_client=httpx.AsyncClient(
                    limits=httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard),
                    timeout=self.options.timeout, event_hooks={"response": [_keep_body]}))
                for _ in range(shards)
            ]
            self._shard_load = [0] * shards
            self._client_loop = loop

    async def aclose(self) -> None:
        for client in self._clients:
            await client.close()
        self._clients = []

    def _parse(self, response: Any) -> Completion:
        try:
            choice = response.choices[0]
            text = choice.message.content or ""
            finish = choice.finish_reason
        except (AttributeError, IndexError, TypeError):
            raise TransientTeacherError("malformed_response", "teacher reply had no choices") from None
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        if self.prices.given:
            cost = self.prices.cost(prompt_tokens, completion_tokens) or 0.0
        else:
            try:
                cost = float(self._litellm.completion_cost(completion_response=response, model=self.model) or 0.0)
            except Exception:  # litellm has no price for self-hosted or unknown models
                cost = 0.0
        return Completion(text, finish, prompt_tokens, completion_tokens, cost)

    def _wait(self, state: RetryCallState) -> float:
        o = self.options
        backoff = min(o.backoff_max, o.backoff_base * 2 ** (state.attempt_number - 1))
        backoff = random.uniform(backoff / 2, backoff)
        error = state.outcome.exception() if state.outcome else None
        asked = getattr(error, "retry_after", None)
        if asked is not None:
            return min(asked, 600.0)
        return backoff

    def _estimate_tokens(self, messages: list[dict[str, str]]) -> int:
        return sum(len(m.get("content") or "") for m in messages) // 3 + 8

    def _estimate_cost(self, messages: list[dict[str, str]]) -> float:
        """The worst case of one request: the prompt estimate and every completion token it may use."""
        if self.budget.cap is None:
            return 0.0
        return self.prices.cost(self._estimate_tokens(messages), self.options.max_tokens) or 0.0


async def _keep_body(response) -> None:
    bodies = _RAW_BODIES.get()
    if bodies is not None and response.request.url.path.endswith("/chat/completions"):
        await response.aread()
        bodies.append(response.content)


def _cut_short(body: bytes) -> bool:
    """A reply whose first choice carries no finish_reason was cut short, whatever litellm reports."""
    try:
        choice = json.loads(body)["choices"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return False  # not JSON, or an error body: litellm has already judged it
    return isinstance(choice, dict) and choice.get("finish_reason") is None
