"""One way to open a teacher for any command: the call settings every command that asks a model shares, and a session
that checks the model and key, starts the embedded model when asked for, and opens the request cache and the spend
ledger, closing all of it on the way out.

    class JudgeConfig(CallSettings):            # the command's own settings, with every call setting beside them
        judge: str = setting("local", ...)

    with TeacherSession(config.judge, config, folder=out, purpose="judge") as teacher:
        ...                                     # teacher.complete(...) inside asyncio.run
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..settings import Settings, setting
from .base import TeacherOptions, check_api_key
from .budget import Budget, Prices
from .cache import RequestCache
from .client import LiteLLMTeacher
from .local import LocalTeacherServer

LOCAL = "local"
MAX_CONCURRENCY = 4096        # requests in flight; the work a setting costs grows with the requests, not with it
AUTO_CEILING = 1024           # the most --concurrency auto grows to
CACHE_FILE, SPEND_FILE = "cache.sqlite", "spend.jsonl"


@dataclass
class CallSettings(Settings):
    """How a command's requests are sent: every command that asks a model (generate, judge, eval, decontaminate)
    has these settings, with the same names, flags and checks."""

    api_base: str | None = setting(None, "Base URL of an OpenAI-compatible server (vLLM, SGLang, llama.cpp, Ollama); "
                                         "give it several times, comma-separated, or as @FILE of URLs for a fleet.",
                                   multiple=True)
    temperature: float = setting(0.7, "Sampling temperature.", min=0, max=2)
    top_p: float = setting(1.0, "Nucleus sampling mass.", min=0, min_open=True, max=1)
    max_tokens: int = setting(1024, "Completion tokens per call.", min=16, max=1_000_000)
    concurrency: int | str = setting(16, "Requests in flight at once (the embedded model uses 1), or 'auto': grow "
                                         f"until the provider pushes back (1 to {AUTO_CEILING}).", min=1,
                                     max=MAX_CONCURRENCY, choices=("auto",))
    rpm: int | None = setting(None, "Requests-per-minute limit.", min=1)
    tpm: int | None = setting(None, "Tokens-per-minute limit.", min=1)
    max_retries: int = setting(5, "Retries per request on 408/409/429/5xx/connection errors.", min=0, max=100)
    timeout: float = setting(120.0, "Hard deadline per request attempt, in seconds.", min=0, min_open=True)
    max_cost: float | None = setting(None, "Hard cap on spending in USD; the command stops cleanly before it.", min=0)
    input_cost: float | None = setting(None, "USD per million prompt tokens, for models litellm cannot price "
                                             "(with --output-cost).", min=0)
    output_cost: float | None = setting(None, "USD per million completion tokens (with --input-cost).", min=0)
    max_outage: float = setting(600.0, "Seconds the model may fail every attempt before the command stops "
                                       "(resumable).", min=0, min_open=True)
    client: str = setting("litellm", "How requests are sent: litellm (every provider), or openai: synth's own "
                                     "lean client for OpenAI-compatible servers at --api-base (a vLLM or SGLang "
                                     "fleet at hundreds of requests a second; prices only from --input-cost).",
                          choices=("litellm", "openai"))
    cache: str | None = setting(None, "Request cache file to share across runs (default: one in the output folder).")

    def checks(self) -> list[str]:
        problems = []
        if (self.input_cost is None) != (self.output_cost is None):
            problems.append("--input-cost and --output-cost go together")
        try:
            urls = self.endpoints()
        except OSError as exc:
            return problems + [f"--api-base {self.api_base}: cannot read the file of URLs ({exc.strerror})"]
        bad = [u for u in urls if not u.startswith(("http://", "https://"))]
        if bad:
            problems.append(f"--api-base must be an http:// or https:// URL, not {bad[0]!r}")
        return problems

    def endpoints(self) -> list[str]:
        """The servers to send to: --api-base as given (comma-separated), or the URLs in @FILE, one a line."""
        if not self.api_base:
            return []
        text = self.api_base
        if text.startswith("@"):
            text = ",".join(line.split("#", 1)[0].strip() for line in Path(text[1:]).read_text().splitlines())
        return [url.strip() for url in text.split(",") if url.strip()]

    def options(self, model: str, purpose: str = "teacher", **changes: Any) -> TeacherOptions:
        """The teacher options these settings give `model`; `changes` override single fields (a judge's temperature)."""
        urls = self.endpoints()
        auto = self.concurrency == "auto"
        values = dict(model=model, api_base=urls[0] if urls else None, endpoints=urls, temperature=self.temperature,
                      top_p=self.top_p, max_tokens=self.max_tokens, concurrency=AUTO_CEILING if auto else self.concurrency,
                      adaptive=auto, rpm=self.rpm, tpm=self.tpm, max_retries=self.max_retries, timeout=self.timeout,
                      max_outage=self.max_outage, input_cost=self.input_cost, output_cost=self.output_cost,
                      client=self.client, purpose=purpose, cache_label="fleet" if len(urls) > 1 else None)
        return TeacherOptions(**{**values, **changes})

    @property
    def most_in_flight(self) -> int:
        """The concurrency bound as a number (the ceiling of --concurrency auto)."""
        return AUTO_CEILING if self.concurrency == "auto" else int(self.concurrency)


def check_teacher(model: str, settings: CallSettings) -> str | None:
    """Everything about a model that can be checked before any folder is made: its provider and key, and a price
    when --max-cost is set. Returns the key (None for the embedded model or a key-less server)."""
    if model == LOCAL:
        return None
    key = check_api_key(model, settings.api_base, settings.client)
    if settings.max_cost is not None:
        prices = Prices(model, settings.input_cost, settings.output_cost)
        if settings.client == "openai" and not prices.given:   # the wire client books only given prices
            raise ConfigError("--max-cost with --client openai needs the model's price: give --input-cost and "
                              "--output-cost (USD per million tokens)")
        prices.require()
    return key


class TeacherSession(contextlib.ExitStack):
    """The teacher of one command run: its cache (the given one, or `folder/cache.sqlite`), its spend ledger
    (`folder/spend.jsonl`, shared by every purpose, so --max-cost holds across kills) and, for "local", the embedded
    model on loopback (its port is new each time, so the cache key carries a fixed label instead)."""

    def __init__(self, model: str, settings: CallSettings, *, folder: Path, purpose: str = "teacher",
                 api_key: str | None = None, budget: Budget | None = None, cache: RequestCache | None = None,
                 **changes: Any):
        super().__init__()
        self.model, self.settings, self.folder, self.purpose = model, settings, Path(folder), purpose
        self.api_key, self.budget, self.cache, self.changes = api_key, budget, cache, changes

    def __enter__(self) -> LiteLLMTeacher:
        super().__enter__()
        try:
            return self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> LiteLLMTeacher:
        options = self.settings.options(self.model, self.purpose, **self.changes)
        api_key, process_died = self.api_key, (lambda: None)
        if self.model == LOCAL:
            server = self.enter_context(LocalTeacherServer())
            options.model, options.api_base, options.endpoints = server.model, server.api_base, []
            options.concurrency, options.adaptive, options.cache_label = 1, False, LOCAL
            api_key, process_died = "sk-local", server.exit_reason
        if self.cache is None:
            self.cache = RequestCache(Path(self.settings.cache) if self.settings.cache else self.folder / CACHE_FILE)
            self.callback(self.cache.close)
        if self.budget is None:
            self.budget = Budget.with_ledger(self.settings.max_cost, self.folder / SPEND_FILE)
            self.callback(self.budget.close)
        return LiteLLMTeacher(options, cache=self.cache, budget=self.budget, api_key=api_key, check_key=False,
                              process_died=process_died)
