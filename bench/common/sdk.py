"""The anthropic SDK client the benchmarks read streams with."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2


def sdk_client(url: str, connections: int, keepalive: int | None = None,
               api_key: str = "bench", **options: Any) -> anthropic.AsyncAnthropic:
    """An async client built as the worker builds its own (on the SDK's aiohttp transport):
    no retries, and a pool of
    `connections` (`keepalive` of them kept alive; all by default)."""
    kept = connections if keepalive is None else keepalive
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=kept)
    return anthropic.AsyncAnthropic(
        api_key=api_key, base_url=url, max_retries=0,
        http_client=anthropic.DefaultAioHttpClient(limits=limits), **options,
    )
