"""The worker's pooled transport against the simulator over real HTTP: streams spread over the
small pools, and every pool's count returns to zero once the streams are closed — also for a
stream abandoned half-read, as a cancelled job's is."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic

from workers.transport import PooledTransport


async def test_streams_spread_over_the_pools_and_give_their_slots_back(simulator: Any) -> None:
    transport = PooledTransport(max_connections=12, pool_size=4)
    client = anthropic.AsyncAnthropic(
        api_key="k", base_url=simulator.url, max_retries=0,
        http_client=anthropic.DefaultAsyncHttpxClient(transport=transport))
    seen: list[list[int]] = []

    async def one(index: int) -> str:
        stream = await client.messages.create(
            model="claude-sonnet-5-5", max_tokens=8, stream=True,
            messages=[{"role": "user", "content": f"Rain in Oxford? ({index})"}])
        seen.append(list(transport.in_flight))
        text = []
        async with stream:
            async for event in stream:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    text.append(event.delta.text)
                    if index % 3 == 0:
                        break  # abandoned half-read
        return "".join(text)

    try:
        answers = await asyncio.gather(*(one(i) for i in range(9)))
        assert all(answers)
        assert len(transport.in_flight) == 3
        assert max(max(counts) for counts in seen) <= 3  # 9 streams over 3 pools, least busy first
        assert transport.in_flight == [0, 0, 0]
    finally:
        await client.close()
