"""synth's own OpenAI clients for OpenAI-compatible servers: SDK retries off, the raw reply body kept (litellm reports a
reply with no finish_reason as "stop"), and connections split over small pools.

httpx's pool scans every connection on every request, so one pool slows down with the square of a large
concurrency; several pools of `SHARD` connections do not. Pools are made as the load needs them, never up front, so
the cost of a high --concurrency grows with the requests in flight, not with the setting.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import os
from typing import Any

PLACEHOLDER_KEY = "sk-no-key-needed"
SHARD = 16      # connections per HTTP pool
# The raw replies (headers, body) read in this task, so a reply is judged as the server sent it.
_RAW: contextvars.ContextVar[list[tuple[Any, bytes]] | None] = contextvars.ContextVar("synth_raw_replies", default=None)


class ClientPool:
    def __init__(self, api_base: str | None, api_key: str | None, concurrency: int, timeout: float):
        self.api_base, self.api_key, self.timeout = api_base, api_key, timeout
        self.max_shards = max(1, -(-concurrency // SHARD))
        self.clients: list[Any] = []
        self.load: list[int] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def take(self) -> tuple[int, Connection]:
        """(shard, connection) with the fewest requests in flight, counted as taken until `give_back(shard)`.

        Round-robin would queue a request behind a pool whose connections all wait on slow replies while other
        pools sit idle; the least-loaded pool has a free connection, as no pool is asked for more than its share."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:                  # clients belong to one event loop
            self.clients, self.load, self._loop = [], [], loop
        shard = min(range(len(self.load)), key=self.load.__getitem__) if self.load else None
        if (shard is None or self.load[shard] >= SHARD) and len(self.clients) < self.max_shards:
            self.clients.append(Connection(self.api_base, self.api_key, self.timeout))
            self.load.append(0)
            shard = len(self.clients) - 1
        assert shard is not None
        self.load[shard] += 1
        return shard, self.clients[shard]

    def give_back(self, shard: int) -> None:
        if shard < len(self.load):
            self.load[shard] -= 1

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
        self.clients, self.load = [], []


class Connection:
    """One pool of `SHARD` connections to a server, made on first use: an aiohttp session for --client openai
    (wire.py), or an httpx client under an OpenAI SDK client for litellm and raw completions."""

    def __init__(self, api_base: str | None, api_key: str | None, timeout: float):
        self.api_base, self.timeout = api_base, timeout
        self.key = api_key or os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_KEY
        self.chat_url = (api_base or "").rstrip("/") + "/chat/completions"
        self._sdk: Any = None
        self._wire: Any = None

    @property
    def wire(self) -> Any:
        """The aiohttp session of --client openai: its C parser costs a fraction of httpx's CPU per reply."""
        if self._wire is None:
            import aiohttp

            self._wire = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=SHARD + 2, ssl=_tls()),
                                               timeout=aiohttp.ClientTimeout(total=self.timeout), trust_env=True)
        return self._wire

    @property
    def sdk(self) -> Any:
        if self._sdk is None:
            import httpx
            import openai

            limits = httpx.Limits(max_connections=SHARD + 2, max_keepalive_connections=SHARD + 2)
            http = httpx.AsyncClient(limits=limits, timeout=self.timeout, verify=_tls(),
                                     event_hooks={"response": [_keep_body]})
            self._sdk = openai.AsyncOpenAI(api_key=self.key, base_url=self.api_base, max_retries=0, http_client=http)
        return self._sdk

    async def aclose(self) -> None:
        if self._sdk is not None:
            await self._sdk.close()
        if self._wire is not None:
            await self._wire.close()


@functools.cache
def _tls() -> Any:
    """One TLS context for every pool: making one costs about 40 ms of CPU, and a fleet opens dozens of pools."""
    import httpx

    return httpx.create_ssl_context()


def watch_replies() -> list[tuple[Any, bytes]]:
    """Start keeping the raw chat-completion replies (headers, body) read in this task; returns their list."""
    replies: list[tuple[Any, bytes]] = []
    _RAW.set(replies)
    return replies


async def _keep_body(response) -> None:
    replies = _RAW.get()
    if replies is not None and response.request.url.path.endswith("/chat/completions"):
        await response.aread()
        replies.append((response.headers, response.content))


def cut_short(body: bytes) -> bool:
    """A reply whose first choice carries no finish_reason was cut short, whatever litellm reports."""
    try:
        choice = json.loads(body)["choices"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return False  # not JSON, or an error body: litellm has already judged it
    return isinstance(choice, dict) and choice.get("finish_reason") is None
