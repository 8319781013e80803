"""The Celery app `bench.pools` runs under each pool it compares. Both tasks do a job's Claude
work and nothing else: open one streaming call with the official SDK, read its raw events and
keep the text, then note on a Redis list when the task started, when its first token came and
when it ended.

    celery -A bench.pools.app worker -P threads|gevent -Q bench-pools ...

`sync_stream` is a plain blocking task, as it would be written for a threads or gevent pool
(the SDK's sync client, on httpx: its only sync transport). `loop_stream` is Sidecar's shape: the
task thread hands the call to the one asyncio loop its process runs (`workers.runtime`) and
waits for it, the SDK's async client reading on aiohttp as the worker's does;
`loop_stream_httpx` is the same on the SDK's default httpx transport, to tell the loop's part
from the transport's.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from typing import Any

import anthropic
import redis
import uvloop

from shared.celery_app import create_celery
from shared.settings import get_settings

SYNC = "bench.pools.sync_stream"
LOOP = "bench.pools.loop_stream"
LOOP_HTTPX = "bench.pools.loop_stream_httpx"
QUEUE = "bench-pools"

if "gevent.monkey" in sys.modules:
    # Under `-P gevent` the standard library is patched before this module loads, and gevent's
    # `select` has no epoll, which trio needs to import; the SDK's HTTP stack imports trio when
    # it is installed but does without it, so it is kept out of a green process.
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type]

_settings = get_settings()
app = create_celery(_settings)
_redis = redis.Redis.from_url(_settings.redis_url)  # thread-safe (and green under gevent)
_clients: dict[str, Any] = {}
_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def done_key(token: str) -> str:
    return f"bench:pools:{token}"


def _request(n: int, max_tokens: int) -> dict[str, Any]:
    """The same streaming call for both tasks."""
    return {"model": _settings.model_id, "max_tokens": max_tokens, "stream": True,
            "messages": [{"role": "user", "content": f"question {n}: how dry is the season?"}]}


def _note(token: str, n: int, started: float, first: float | None, tokens: int) -> None:
    record = {"n": n, "started": started, "first": first, "ended": time.time(), "tokens": tokens}
    _redis.rpush(done_key(token), json.dumps(record))


def _sync_client() -> anthropic.Anthropic:
    # One client for every task thread or greenlet of the process, as a worker would share it;
    # the SDK's default pool (1 000 connections) holds any concurrency measured here.
    with _lock:
        if "sync" not in _clients:
            _clients["sync"] = anthropic.Anthropic(
                api_key=_settings.api_key() or "bench", base_url=_settings.anthropic_base_url,
                max_retries=0)
        return _clients["sync"]


@app.task(name=SYNC, acks_late=True, reject_on_worker_lost=True)
def sync_stream(token: str, n: int, max_tokens: int) -> None:
    started, first, tokens, text = time.time(), None, 0, []
    stream = _sync_client().messages.create(**_request(n, max_tokens))
    with stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                first = first or time.time()
                text.append(event.delta.text)
            elif event.type == "message_delta":
                tokens = event.usage.output_tokens
    _note(token, n, started, first, tokens)


async def _loop_call(client: str, n: int, max_tokens: int) -> tuple[float | None, int]:
    first, tokens, text = None, 0, []
    stream = await _clients[client].messages.create(**_request(n, max_tokens))
    async with stream:
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                first = first or time.time()
                text.append(event.delta.text)
            elif event.type == "message_delta":
                tokens = event.usage.output_tokens
    return first, tokens


def _on_loop(client: str, token: str, n: int, max_tokens: int) -> None:
    started = time.time()
    call = asyncio.run_coroutine_threadsafe(_loop_call(client, n, max_tokens), _running_loop())
    first, tokens = call.result()
    _note(token, n, started, first, tokens)


@app.task(name=LOOP, acks_late=True, reject_on_worker_lost=True)
def loop_stream(token: str, n: int, max_tokens: int) -> None:
    _on_loop("aiohttp", token, n, max_tokens)


@app.task(name=LOOP_HTTPX, acks_late=True, reject_on_worker_lost=True)
def loop_stream_httpx(token: str, n: int, max_tokens: int) -> None:
    _on_loop("httpx", token, n, max_tokens)


def _running_loop() -> asyncio.AbstractEventLoop:
    """The process's loop and its clients, built on first use as `workers.runtime` builds them
    (a thread of their own, uvloop; the SDK's aiohttp transport, and its default)."""
    global _loop
    with _lock:
        if _loop is None:
            loop, ready = uvloop.new_event_loop(), threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                options: dict[str, Any] = {"api_key": _settings.api_key() or "bench",
                                           "base_url": _settings.anthropic_base_url,
                                           "max_retries": 0}
                _clients["aiohttp"] = anthropic.AsyncAnthropic(
                    http_client=anthropic.DefaultAioHttpClient(), **options)
                _clients["httpx"] = anthropic.AsyncAnthropic(**options)
                ready.set()
                loop.run_forever()

            threading.Thread(target=run, name="bench-loop", daemon=True).start()
            ready.wait(10)
            _loop = loop
        return _loop
