"""Relaying a job's events to one SSE client: the log from the client's position, then the
live channel, de-duplicated by id, with keepalives — and resynchronised from the log whenever
the channel might have missed something (a gap in ids, or a quiet keepalive period)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from api.draining import RECONNECT
from api.hub import Hub
from shared import events
from shared.jobstore import JobStore

KEEPALIVE = b": keepalive\n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


class _Cursor:
    """The id of the last event sent; filters out what the client already has."""

    def __init__(self, after: int) -> None:
        self.last = after
        self.done = False

    def accept(self, frame: bytes) -> bool:
        if self.done or events.frame_id(frame) != self.last + 1:
            return False
        self.last += 1
        self.done = events.is_done(frame)
        return True


async def job_events(store: JobStore, hub: Hub, job_id: str, after: int,
                     keepalive: float, draining: asyncio.Event | None = None,
                     ) -> AsyncIterator[bytes]:
    """Yield the job's frames after `after` until its `done` event (or, when the process is
    stopping, a `reconnect` event)."""
    draining = draining or asyncio.Event()
    mailbox = await hub.subscribe(job_id)
    cursor = _Cursor(after)
    try:
        backlog = await store.read_events(job_id, cursor.last)
        for frame in backlog:
            if cursor.accept(frame):
                yield frame
        if not backlog and after and await _ended_before(store, job_id, after):
            return  # the client already has the whole stream, `done` included
        while not cursor.done:
            received = None if draining.is_set() else await mailbox.next(keepalive)
            if received is None and draining.is_set():
                yield RECONNECT
                return
            frame = received or b""
            if frame and events.frame_id(frame) <= cursor.last:
                continue  # already sent from the log
            if frame and cursor.accept(frame):
                yield frame
                continue
            # A gap or a quiet period: the log is the truth.
            fresh = await store.read_events(job_id, cursor.last)
            caught_up = [f for f in fresh if cursor.accept(f)]
            for missed in caught_up:
                yield missed
            if not frame and not caught_up:
                yield KEEPALIVE
    finally:
        hub.unsubscribe(job_id, mailbox)


async def _ended_before(store: JobStore, job_id: str, position: int) -> bool:
    last = await store.last_event(job_id)
    return last is not None and events.is_done(last) and events.frame_id(last) <= position
