"""One Redis pub/sub connection per API process, shared by every SSE client.

Each job's channel is subscribed while at least one client follows it; messages are fanned out
to the clients' queues. A new client waits for Redis to confirm the subscription before it reads
the job's log, so no event can fall between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from shared import keys

log = logging.getLogger("sidecar.api")


class Hub:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.pubsub: PubSub = redis.pubsub()
        self.queues: dict[bytes, set[asyncio.Queue[bytes]]] = {}
        self.confirmed: dict[bytes, asyncio.Event] = {}
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # A standing subscription keeps the connection open before any client arrives.
        await self.pubsub.subscribe(keys.PREFIX + ":hub")
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.pubsub.aclose()

    async def subscribe(self, job_id: str) -> asyncio.Queue[bytes]:
        channel = keys.channel(job_id).encode()
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        followers = self.queues.setdefault(channel, set())
        followers.add(queue)
        if channel not in self.confirmed:
            self.confirmed[channel] = asyncio.Event()
            await self.pubsub.subscribe(channel)
        await asyncio.wait_for(self.confirmed[channel].wait(), 10)
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue[bytes]) -> None:
        channel = keys.channel(job_id).encode()
        followers = self.queues.get(channel)
        if followers is None:
            return
        followers.discard(queue)
        if not followers:
            asyncio.get_running_loop().create_task(self._drop(channel))

    async def _drop(self, channel: bytes) -> None:
        if self.queues.get(channel):
            return  # a new client arrived meanwhile
        self.queues.pop(channel, None)
        self.confirmed.pop(channel, None)
        with contextlib.suppress(Exception):
            await self.pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        while True:
            try:
                message = await self.pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis went away; redis-py resubscribes when it reconnects
                log.warning("pub/sub connection lost; reconnecting", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, object]) -> None:
        channel = message["channel"]
        assert isinstance(channel, bytes)
        if message["type"] == "subscribe":
            event = self.confirmed.get(channel)
            if event is not None:
                event.set()
        elif message["type"] == "message":
            data = message["data"]
            assert isinstance(data, bytes)
            for queue in self.queues.get(channel, ()):
                queue.put_nowait(data)
