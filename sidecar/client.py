"""`SidecarClient`: Claude called directly through the official SDK, for a backend that wants no
queue — with the chores every such caller otherwise rewrites: model aliases, retries that honour
retry-after, a local answer cache, usage and cost bookkeeping, and one error tree.

    with SidecarClient(model="haiku") as claude:
        answer = claude.chat("How full is the dam?", system="You advise farmers.")
        for chunk in claude.chat_stream("And next month?"):
            print(chunk.content, end="")
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import anthropic
from anthropic import AsyncStream, Stream
from anthropic.types import Message, RawMessageStreamEvent

from shared import models
from shared.pricing import cost_usd
from shared.settings import get_settings
from sidecar import _messages, _retries
from sidecar._cache import TTLCache, cache_key
from sidecar._retries import mapped_errors
from sidecar.errors import RateLimitError, SidecarError

__all__ = ["Model", "RateLimitError", "SidecarClient", "SidecarError", "StreamChunk"]

HEALTH_TIMEOUT = 10.0
History = Sequence[Mapping[str, str]]


class Model(StrEnum):
    """The current model of each family; any alias or full `claude-…` id is accepted as well."""

    OPUS = models.ALIASES["opus"]
    SONNET = models.ALIASES["sonnet"]
    HAIKU = models.ALIASES["haiku"]


@dataclass
class StreamChunk:
    """A piece of streamed text; the last chunk has `is_final=True`, no text and the usage."""

    content: str
    is_final: bool = False
    usage: dict[str, int] | None = None
    reset: bool = False  # (queue path) an attempt failed mid-stream: drop the text so far


class SidecarClient:
    """Claude for one process, without the job queue.

    The SDK's own retries are off (`max_retries=0`): this client retries in one place, with
    exponential backoff and jitter, honouring a 429's retry-after. It keeps `last_usage` and a
    running `total_cost_usd`, and answers a repeated `chat` from its own cache for `cache_ttl`
    seconds (0 turns that off). Thread-safe for the sync methods; one event loop for the async.
    """

    def __init__(
        self,
        api_key: str | None = None,
        model: Model | str = Model.SONNET,
        base_url: str | None = None,
        timeout: float = 30,
        max_retries: int = 3,
        cache_ttl: float = 3600,
    ) -> None:
        if api_key is None or base_url is None:
            settings = get_settings()
            api_key = settings.api_key() if api_key is None else api_key
            base_url = base_url or settings.anthropic_base_url
        if not api_key:
            raise SidecarError(
                "no Claude API key: pass api_key= or set ANTHROPIC_API_KEY",
                error_type="configuration_error",
            )
        if max_retries < 0 or timeout <= 0:
            raise ValueError("max_retries must be >= 0 and timeout > 0")
        self.model = _messages.resolve_model(model)
        self.base_url = base_url
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.last_usage: dict[str, int] | None = None
        self.total_cost_usd = 0.0
        self._api_key = api_key
        self._cache = TTLCache(cache_ttl)
        self._lock = threading.Lock()
        self._sync: anthropic.Anthropic | None = None
        self._async: anthropic.AsyncAnthropic | None = None
        self._closed = False

    def __repr__(self) -> str:  # never shows the key
        return f"SidecarClient(model={self.model!r}, base_url={self.base_url!r})"

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> SidecarClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> SidecarClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def close(self) -> None:
        """Release the sync SDK client's connections; the client is unusable afterwards. An
        async SDK client cannot be awaited from here: use `aclose()` (or `async with`)."""
        with self._lock:
            self._closed = True
            sync, self._sync, self._async = self._sync, None, None
        if sync is not None:
            sync.close()

    async def aclose(self) -> None:
        """Release both SDK clients' connections."""
        async_client = self._async
        self.close()
        if async_client is not None:
            await async_client.close()

    def _ensure_open(self) -> None:
        if self._closed:
            raise SidecarError("this SidecarClient is closed")

    def _options(self) -> dict[str, Any]:
        self._ensure_open()
        return {"api_key": self._api_key, "base_url": self.base_url,
                "timeout": self.timeout, "max_retries": 0}

    def _client(self) -> anthropic.Anthropic:
        """The sync SDK client, built on first use (an async-only app never opens one)."""
        with self._lock:
            if self._sync is None:
                self._sync = anthropic.Anthropic(**self._options())
            return self._sync

    def _async_client(self) -> anthropic.AsyncAnthropic:
        with self._lock:
            if self._async is None:
                self._async = anthropic.AsyncAnthropic(**self._options())
            return self._async

    # --- bookkeeping and cache -------------------------------------------------------------

    def _request(
        self, message: str, system: str | None, history: History | None, max_tokens: int,
        temperature: float | None, model: Model | str | None,
    ) -> dict[str, Any]:
        self._ensure_open()  # a closed client answers nothing, not even from its cache
        model_id = self.model if model is None else _messages.resolve_model(model)
        return _messages.build_request(message, system, history, max_tokens, temperature, model_id)

    def _record(self, model_id: str, usage: Mapping[str, int]) -> dict[str, int]:
        """Note one answered call's usage and cost; returns the usage with every field."""
        complete = _messages.full_usage(usage)
        with self._lock:
            self.last_usage = complete
            self.total_cost_usd += cost_usd(model_id, complete)
        return dict(complete)

    def _remember(self, key: str, model_id: str, reply: Message) -> str:
        text = _messages.reply_text(reply)
        self._record(model_id, _messages.usage_of(reply.usage))
        self._cache.put(key, text)
        return text

    def clear_cache(self) -> None:
        """Forget every cached answer, e.g. after the knowledge behind the prompts changed."""
        self._cache.clear()

    # --- chat ------------------------------------------------------------------------------

    def chat(
        self, message: str, system: str | None = None, history: History | None = None,
        max_tokens: int = 1024, temperature: float | None = None, model: Model | str | None = None,
    ) -> str:
        """Claude's answer to `message` after `history`, from the cache when the same request
        was answered less than `cache_ttl` seconds ago (a cache hit leaves `last_usage` as is)."""
        request = self._request(message, system, history, max_tokens, temperature, model)
        key = cache_key(request)
        if (cached := self._cache.get(key)) is not None:
            return cached
        with mapped_errors():
            reply: Message = _retries.retrying(self.max_retries)(self._create, request)
        return self._remember(key, request["model"], reply)

    async def chat_async(
        self, message: str, system: str | None = None, history: History | None = None,
        max_tokens: int = 1024, temperature: float | None = None, model: Model | str | None = None,
    ) -> str:
        """`chat` for an event loop: same cache, retries and bookkeeping."""
        request = self._request(message, system, history, max_tokens, temperature, model)
        key = cache_key(request)
        if (cached := self._cache.get(key)) is not None:
            return cached
        with mapped_errors():
            reply: Message = await _retries.async_retrying(self.max_retries)(
                self._acreate, request
            )
        return self._remember(key, request["model"], reply)

    def _create(self, request: dict[str, Any]) -> Message:
        reply: Message = self._client().messages.create(**request)
        return reply

    async def _acreate(self, request: dict[str, Any]) -> Message:
        reply: Message = await self._async_client().messages.create(**request)
        return reply

    # --- streaming -------------------------------------------------------------------------

    def chat_stream(
        self, message: str, system: str | None = None, history: History | None = None,
        max_tokens: int = 1024, temperature: float | None = None, model: Model | str | None = None,
    ) -> Iterator[StreamChunk]:
        """Text chunks as Claude writes them, then a final chunk with the usage; no cache.

        A failure before the first text is retried like `chat`'s; once text has gone out a
        retry would repeat it, so the failure is raised as a `SidecarError` instead. Bad
        arguments raise here, not at the first `next()`.
        """
        request = self._request(message, system, history, max_tokens, temperature, model)
        return self._stream(request)

    def _stream(self, request: dict[str, Any]) -> Iterator[StreamChunk]:
        usage: dict[str, int] = {}
        with mapped_errors():
            opened: tuple[Stream[RawMessageStreamEvent], str | None, Iterator[str]] = (
                _retries.retrying(self.max_retries)(self._open_stream, request, usage)
            )
        stream, first, texts = opened
        with stream, mapped_errors():
            if first is not None:
                yield StreamChunk(first)
            for text in texts:
                yield StreamChunk(text)
        yield StreamChunk("", is_final=True, usage=self._record(request["model"], usage))

    def _open_stream(
        self, request: dict[str, Any], usage: dict[str, int]
    ) -> tuple[Stream[RawMessageStreamEvent], str | None, Iterator[str]]:
        """Open a stream and read up to its first text: what fails before then may be retried."""
        usage.clear()
        stream: Stream[RawMessageStreamEvent] = self._client().messages.create(
            stream=True, **request
        )
        texts = _messages.texts(stream, usage)
        try:
            first = next(texts, None)
        except BaseException:
            stream.close()
            raise
        return stream, first, texts

    def chat_stream_async(
        self, message: str, system: str | None = None, history: History | None = None,
        max_tokens: int = 1024, temperature: float | None = None, model: Model | str | None = None,
    ) -> AsyncIterator[StreamChunk]:
        """`chat_stream` for an event loop: `async for chunk in client.chat_stream_async(…)`."""
        request = self._request(message, system, history, max_tokens, temperature, model)
        return self._astream(request)

    async def _astream(self, request: dict[str, Any]) -> AsyncIterator[StreamChunk]:
        usage: dict[str, int] = {}
        with mapped_errors():
            opened: tuple[AsyncStream[RawMessageStreamEvent], str | None, AsyncIterator[str]] = (
                await _retries.async_retrying(self.max_retries)(self._aopen_stream, request, usage)
            )
        stream, first, texts = opened
        async with stream:
            with mapped_errors():
                if first is not None:
                    yield StreamChunk(first)
                async for text in texts:
                    yield StreamChunk(text)
        yield StreamChunk("", is_final=True, usage=self._record(request["model"], usage))

    async def _aopen_stream(
        self, request: dict[str, Any], usage: dict[str, int]
    ) -> tuple[AsyncStream[RawMessageStreamEvent], str | None, AsyncIterator[str]]:
        usage.clear()
        stream: AsyncStream[RawMessageStreamEvent] = await self._async_client().messages.create(
            stream=True, **request
        )
        texts = _messages.atexts(stream, usage)
        try:
            first = await anext(texts, None)
        except BaseException:
            await stream.close()
            raise
        return stream, first, texts

    # --- health ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Whether Claude answers, from one `count_tokens` call (no output tokens, no
        retries). Never raises: a health endpoint reports a failure rather than crashing."""
        started = time.perf_counter()
        try:
            self._client().messages.count_tokens(**self._probe())
        except Exception as exc:  # the failure is the answer
            return self._health(started, exc)
        return self._health(started, None)

    async def health_async(self) -> dict[str, Any]:
        """`health` for an event loop."""
        started = time.perf_counter()
        try:
            await self._async_client().messages.count_tokens(**self._probe())
        except Exception as exc:  # the failure is the answer
            return self._health(started, exc)
        return self._health(started, None)

    def _probe(self) -> dict[str, Any]:
        return {"model": self.model, "messages": [{"role": "user", "content": "ping"}],
                "timeout": min(self.timeout, HEALTH_TIMEOUT)}

    def _health(self, started: float, exc: Exception | None) -> dict[str, Any]:
        report: dict[str, Any] = {
            "status": "ok" if exc is None else "error",
            "model": self.model,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        if isinstance(exc, _retries.UPSTREAM_ERRORS):
            report["error"] = str(_retries.to_error(exc))
        elif exc is not None:
            report["error"] = str(exc)
        return report
