"""The teacher: one client for every provider, used by the teacher, the verifier and every judge. Requests go out
through litellm, or (--client openai, for OpenAI-compatible servers) on synth's own wire client (wire.py).

A call is cached by a hash of the whole request, budgeted before it is sent (a worst case that holds for any script),
bounded by a concurrency limit and optional RPM/TPM limits, given a hard deadline per attempt, and retried (one
retry layer, ours) on transient failures with exponential backoff, jitter and Retry-After. Every wait ends at once on
a stop request, and no wait may outlast --max-outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import functools
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from ..errors import (FatalTeacherError, StopRequested, TeacherError, TeacherOutageError, TeacherRefusesSettings,
                      TransientTeacherError)
from .base import Completion, Teacher, TeacherOptions, check_api_key
from .breaker import OutageBreaker
from .budget import Budget, Prices, Usage, prompt_tokens_bound
from .cache import RequestCache, request_key
from .fleet import Fleet
from .pool import cut_short, watch_replies
from .ratelimit import AdaptiveLimit, WindowLimiter
from .retry import classify, retry_after_seconds
from .wire import chat, openai_body, reply_parts

__all__ = ["Completion", "LiteLLMTeacher", "Teacher", "TeacherOptions", "check_api_key"]
WAIT_STEP = 0.25      # seconds between looks at the stop flag during any wait


def _remaining(headers: Any) -> int | None:
    """The provider's x-ratelimit-remaining-requests, when it sent one."""
    try:
        value = headers.get("x-ratelimit-remaining-requests")
        return int(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


@dataclass
class _Bill:
    """One request's attempts, and every reply the server charged for, usable or not: a cut reply is paid too."""

    attempts: int = 0
    costs: list[float] = field(default_factory=list)
    losses: int = 0        # the teacher's count of run-stopping errors when the request began


class LiteLLMTeacher:
    def __init__(self, options: TeacherOptions, *, cache: RequestCache | None = None,
                 budget: Budget | None = None, api_key: str | None = None, check_key: bool = True,
                 process_died: Callable[[], str | None] = lambda: None):
        self.options = options
        # synth's own wire client (wire.py) for a server at an address: litellm is not imported for chat requests
        self.direct = options.client == "openai" and bool(options.api_base or options.endpoints)
        self.model = options.model
        self.cache = cache
        self.budget = budget or Budget()
        self.usage = Usage()
        self._api_key = api_key if api_key is not None else \
            (check_api_key(options.model, options.api_base, options.client) if check_key else None)
        self.stopping = False        # set on Ctrl-C/SIGTERM: nothing new is sent, calls in flight finish, waits end
        self._answered = False       # the server has answered at least once (any HTTP reply)
        self._succeeded = False      # ...and at least once with a usable reply
        self._refusals = 0
        self._bad_requests = 0
        self.process_died = process_died   # how the embedded teacher's process died, None while it runs
        self.fatal: FatalTeacherError | None = None   # the last error that stopped a run...
        self.losses = 0                                # ...and how many have: a request begun before one is not sent
        urls = options.endpoints or ([options.api_base] if options.api_base else [None])
        self.fleet = Fleet(urls, self._api_key, options.concurrency, options.timeout) \
            if self.direct or self._provider() == "openai" else None
        self.prices = Prices(options.model, options.input_cost, options.output_cost)
        self.breaker = OutageBreaker(threshold=max(3, min(12, options.concurrency // 4)), max_outage=options.max_outage)
        self.adaptive = AdaptiveLimit(high=options.concurrency) if options.adaptive else None
        self._slots = asyncio.Semaphore(options.concurrency)
        self._outcome: contextvars.ContextVar[dict | None] = contextvars.ContextVar("synth_attempt", default=None)
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

    def text_request(self, prompt: str, stop: list[str] | None = None, seed: int | None = None) -> dict[str, Any]:
        """A raw completion request (/v1/completions), as sent. Holds no secret."""
        o = self.options
        req = {"model": o.model, "prompt": prompt, "temperature": o.temperature, "top_p": o.top_p,
               "max_tokens": o.max_tokens, **o.extra}
        req.update({k: v for k, v in (("stop", stop), ("seed", seed)) if v is not None})
        if o.api_base:
            req["api_base"] = o.api_base
        return req

    async def complete(self, messages: list[dict[str, str]]) -> Completion:
        return await self._complete(self.request(messages), messages)

    async def complete_text(self, prompt: str, *, stop: list[str] | None = None, seed: int | None = None) -> Completion:
        """A raw completion of `prompt`, through the same cache, retries, limits and budget as a chat call. Only
        OpenAI-compatible servers have it (Magpie needs it)."""
        if self.fleet is None:
            raise TeacherError("no_completions", "this provider has no raw completion endpoint")
        return await self._complete(self.text_request(prompt, stop, seed), [{"role": "user", "content": prompt}])

    async def _complete(self, request: dict[str, Any], messages: list[dict[str, str]]) -> Completion:
        key = self.cache_key(request)
        self.usage.calls += 1
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            self.usage.cached_calls += 1
            return self._finish(Completion(**{**hit, "cached": True, "cost": 0.0, "attempts": 0}), count=False)
        if self.stopping:
            raise StopRequested("stopping: no new teacher calls")
        ticket = self.budget.reserve(self._worst_cost(messages))
        bill = _Bill(losses=self.losses)
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
                                 bill: _Bill) -> Completion:
        o = self.options
        attempts = 0
        counted = 0     # attempts that count against max_retries: a failed outage probe does not...
        free = 0        # ...up to max_retries of them, so requests that always fail end even when nothing else is left
        retrying = AsyncRetrying(
            stop=lambda state: counted > o.max_retries,
            wait=self._wait,
            sleep=self.pause,
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
                    async with self._slot():
                        probe = await self.breaker.before_attempt(lambda: self.stopping)
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
                        except TeacherError as exc:
                            self.breaker.record_success(probe)   # the server answered; it is not down
                            self._answered = True
                            self._check_settings(exc)
                            raise
                        self.breaker.record_success(probe)
                        self._answered = self._succeeded = True
                    completion.attempts = attempts
                    return completion
        except TeacherError as exc:
            self.usage.failures += 1
            if isinstance(exc, FatalTeacherError) and self.losses == bill.losses:
                self.fatal, self.losses = exc, self.losses + 1
            raise
        raise AssertionError("unreachable")

    @contextlib.asynccontextmanager
    async def _slot(self):
        """A place among the requests in flight: a fixed number, or (--concurrency auto) an adaptive one that
        hears how each attempt ended."""
        if self.adaptive is None:
            async with self._slots:
                yield
            return
        await self.adaptive.acquire(lambda: self.stopping)
        outcome = {"kind": "error", "seconds": None, "remaining": None}
        self._outcome.set(outcome)
        try:
            yield
        finally:
            self.adaptive.release(outcome["kind"], outcome["seconds"], outcome["remaining"])

    def _check_reachable(self, error: TransientTeacherError) -> None:
        """A teacher that has never answered and refuses every connection is a wrong address, not an outage:
        stop with one line instead of waiting out --max-outage. So is a teacher process of synth's own that died."""
        died = self.process_died()
        if died:
            raise FatalTeacherError("unreachable", f"{died}; nothing of the run is lost: go on with --resume")
        if error.reason != "unreachable":
            self._answered = True
            return
        self._refusals += 1
        if not self._answered and self._refusals >= self.breaker.threshold:
            where = self.options.api_base or self.model
            raise FatalTeacherError("unreachable", f"nothing answers at {where}: {error}; check --api-base and that "
                                                   "the server is running, then go on with --resume")

    def _check_settings(self, error: TeacherError) -> None:
        """A teacher that has never given a usable reply and answers every request 400/422 refuses the settings
        themselves (a parameter out of its range, a model it does not serve): a user error, not a bad request."""
        if error.reason not in ("http_400", "http_422") or self._succeeded:
            return
        self._bad_requests += 1
        if self._bad_requests >= self.breaker.threshold:
            raise TeacherRefusesSettings(error.reason, f"the teacher refuses every request ({error}); check the "
                                                       "settings it is sent (--teacher, --temperature, --top-p, "
                                                       "--max-tokens)")

    async def _send_once(self, request: dict[str, Any], messages: list[dict[str, str]], bill: _Bill) -> Completion:
        o = self.options
        if self._rpm:
            await self._rpm.acquire(1, lambda: self.stopping)
        if self._tpm:
            await self._tpm.acquire(min(o.tpm, prompt_tokens_bound(o.model, messages) + o.max_tokens),
                                    lambda: self.stopping)
        if self.losses != bill.losses:      # the run was lost while this request waited (a slot, the breaker, a limit)
            raise copy.copy(self.fatal)
        wire = self.direct and "prompt" not in request      # a chat request on synth's own wire client
        replies = [] if wire else watch_replies()
        endpoint = shard = None
        extra: dict[str, Any] = {}
        if self.fleet is not None:
            endpoint, shard, connection = self.fleet.take()
            extra = {"connection": connection, "api_base": endpoint.url}
        started, answered, down = time.monotonic(), False, False
        try:
            response = await asyncio.wait_for(self._call(request, extra, wire), timeout=o.timeout)
            answered = True
        except Exception as exc:  # every failure is sorted by classify(), nothing escapes unclassified
            error = classify(exc)
            error.retry_after = retry_after_seconds(exc)  # type: ignore[attr-defined]
            answered = not isinstance(error, TransientTeacherError) or error.reason == "http_429"
            down = not answered
            self._note("throttled" if error.reason == "http_429" else "error", None, None)
            raise error from None
        finally:
            if endpoint is not None:
                self.fleet.done(endpoint, shard, answered=answered, seconds=time.monotonic() - started, down=down)
        if wire:
            reply, headers = response
            completion = self._parse_wire(reply)
        else:
            completion = self._parse_text(response) if "prompt" in request else self._parse(response)
            headers, body = replies[-1] if replies else ({}, b"")
        bill.costs.append(completion.cost)
        self._note("ok", time.monotonic() - started, _remaining(headers))
        if (completion.finish_reason is None) if wire else (body and cut_short(body)):
            raise TransientTeacherError("no_finish_reason", "teacher reply carried no finish_reason (cut short)")
        return completion

    def _call(self, request: dict[str, Any], extra: dict[str, Any], wire: bool):
        o = self.options
        if wire:
            connection = extra["connection"]
            return chat(connection.wire, connection.chat_url, connection.key, request)
        if "prompt" not in request:
            extra = {"client": extra["connection"].sdk, "api_base": extra["api_base"]} if extra else extra
            return self._litellm.acompletion(**{**request, **extra}, api_key=self._api_key, timeout=o.timeout,
                                             max_retries=0, num_retries=0)
        return extra["connection"].sdk.completions.create(**openai_body(request, merge_extra=False), timeout=o.timeout)

    def _parse_text(self, response: Any) -> Completion:
        from ..formats import repair

        try:
            choice = response.choices[0]
            text, finish = choice.text or "", choice.finish_reason
        except (AttributeError, IndexError, TypeError):
            raise TransientTeacherError("malformed_response", "teacher reply had no choices") from None
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = self.prices.cost(prompt_tokens, completion_tokens) or 0.0
        return Completion(repair(text), finish, prompt_tokens, completion_tokens, cost)

    def _parse_wire(self, reply: dict[str, Any]) -> Completion:
        """A chat reply from the wire client. Its cost comes from --input-cost/--output-cost only: litellm's price
        map is for hosted providers, and a self-hosted fleet's cost is its own hardware."""
        from ..formats import repair

        text, finish, prompt_tokens, completion_tokens = reply_parts(reply)
        cost = (self.prices.cost(prompt_tokens, completion_tokens) or 0.0) if self.prices.given else 0.0
        return Completion(repair(text), finish, prompt_tokens, completion_tokens, cost)

    @functools.cached_property
    def _litellm(self) -> Any:
        import litellm

        litellm.suppress_debug_info = True
        litellm.drop_params = True
        return litellm

    def _note(self, kind: str, seconds: float | None, remaining: int | None) -> None:
        """Tell the adaptive concurrency how this attempt ended."""
        outcome = self._outcome.get()
        if outcome is not None:
            outcome.update(kind=kind, seconds=seconds, remaining=remaining)

    def _provider(self) -> str | None:
        try:
            return self._litellm.get_llm_provider(self.model, api_base=self.options.api_base)[1]
        except Exception:  # an unknown provider is litellm's to report when the call is made
            return None

    async def aclose(self) -> None:
        if self.fleet is not None:
            await self.fleet.aclose()

    def endpoint_stats(self) -> dict[str, dict[str, Any]]:
        return self.fleet.stats() if self.fleet is not None else {}

    def _parse(self, response: Any) -> Completion:
        from ..formats import repair

        try:
            choice = response.choices[0]
            text = choice.message.content or ""
            finish = choice.finish_reason
        except (AttributeError, IndexError, TypeError):
            raise TransientTeacherError("malformed_response", "teacher reply had no choices") from None
        usage = getattr(response, "usage", None)
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        if self.prices.given or not self.prices.litellm_knows:
            cost = self.prices.cost(prompt_tokens, completion_tokens) or 0.0
        else:
            try:
                cost = float(self._litellm.completion_cost(completion_response=response, model=self.model) or 0.0)
            except Exception:  # litellm has no price for self-hosted or unknown models
                cost = 0.0
        return Completion(repair(text), finish, prompt_tokens, completion_tokens, cost)   # half an emoji is text

    def _wait(self, state: RetryCallState) -> float:
        o = self.options
        backoff = min(o.backoff_max, o.backoff_base * 2 ** (state.attempt_number - 1))
        backoff = random.uniform(backoff / 2, backoff)
        error = state.outcome.exception() if state.outcome else None
        asked = getattr(error, "retry_after", None)
        if asked is None:
            return backoff
        if asked > o.max_outage:
            raise TeacherOutageError("retry_after", f"the teacher asks to wait {asked:.0f}s before the next try, "
                                                    f"longer than --max-outage {o.max_outage:g}s; go on with "
                                                    "--resume later, or raise --max-outage")
        return asked

    async def pause(self, seconds: float) -> None:
        """Sleep, but end at once (StopRequested) when a stop is asked for."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.stopping:
                raise StopRequested("stopping: no more waiting")
            await asyncio.sleep(min(left, WAIT_STEP))

    def _worst_cost(self, messages: list[dict[str, str]]) -> float:
        """The worst case of one request: a bound on its prompt tokens and every completion token it may use."""
        if self.budget.cap is None:
            return 0.0
        return self.prices.cost(prompt_tokens_bound(self.model, messages), self.options.max_tokens) or 0.0
