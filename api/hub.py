"""One Redis pub/sub connection per API process, shared by every SSE client.

Each job's channel is subscribed while at least one client follows it; messages are fanned out
to the clients' mailboxes. A new client waits for Redis to confirm the subscription before it
reads the job's log, so no event can fall between the two.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from shared import keys

log = logging.getLogger("sidecar.api")


class Mailbox:
    """One SSE client's frames. Waiting costs one future and one timer, not a task per frame:
    the hub appends and wakes the waiter; so do the keepalive timer and the process beginning
    to drain."""

    def __init__(self) -> None:
        self.frames: collections.deque[bytes] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, frame: bytes) -> None:
        self.frames.append(frame)
        self.wake()

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self, timeout: float) -> bytes | None:
        """The next frame; None when `timeout` passed, or something else woke us, first."""
        if not self.frames:
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            timer = loop.call_later(timeout, self.wake)
            try:
                await self._waiter
            finally:
                timer.cancel()
                self._waiter = None
        return self.frames.popleft() if self.frames else None


class Hub:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.pubsub: PubSub = redis.pubsub()
        self.mailboxes: dict[bytes, set[Mailbox]] = {}
        self.confirmed: dict[bytes, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, draining: asyncio.Event | None = None) -> None:
        # A standing subscription keeps the connection open before any client arrives.
        await self.pubsub.subscribe(keys.PREFIX + ":hub")
        self._tasks.append(asyncio.create_task(self._read()))
        if draining is not None:
            self._tasks.append(asyncio.create_task(self._wake_on(draining)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pubsub.aclose()

    async def _wake_on(self, draining: asyncio.Event) -> None:
        """Every waiting client looks up when the process starts to drain."""
        await draining.wait()
        for boxes in list(self.mailboxes.values()):
            for box in boxes:
                box.wake()

    async def subscribe(self, job_id: str, mailbox: Mailbox | None = None) -> Mailbox:
        """A mailbox receiving the job's frames (`mailbox`, to have one client follow two
        jobs' channels)."""
        channel = keys.channel(job_id).encode()
        mailbox = mailbox or Mailbox()
        self.mailboxes.setdefault(channel, set()).add(mailbox)
        if channel not in self.confirmed:
            self.confirmed[channel] = asyncio.Event()
            await self.pubsub.subscribe(channel)
        await asyncio.wait_for(self.confirmed[channel].wait(), 10)
        return mailbox

    def unsubscribe(self, job_id: str, mailbox: Mailbox) -> None:
        channel = keys.channel(job_id).encode()
        followers = self.mailboxes.get(channel)
        if followers is None:
            return
        followers.discard(mailbox)
        if not followers:
            asyncio.get_running_loop().create_task(self._drop(channel))

    async def _drop(self, channel: bytes) -> None:
        if self.mailboxes.get(channel):
            return  # a new client arrived meanwhile
        self.mailboxes.pop(channel, None)
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
            for mailbox in self.mailboxes.get(channel, ()):
                mailbox.put(data)
