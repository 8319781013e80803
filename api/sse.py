"""Relaying a job's events to one SSE client: the log from the client's position, then the
live channel, de-duplicated by id, with keepalives — and resynchronised from the log whenever
the channel might have missed something (a gap in ids, or a quiet keepalive period). A stream
whose job record is gone (expired or deleted) ends with an `error` event: no `done` can come."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from api import mirror
from api.draining import RECONNECT
from api.hub import Hub, Mailbox
from shared import events, keys
from shared.jobstore import JobStore
from shared.record import Record

KEEPALIVE = b": keepalive\n\n"
# No id, like `reconnect`: ids stay those of the log, and the record's absence is not an event
# of it.
GONE = events.frame(None, events.ERROR, {"type": "not_found",
                                         "message": "the job's record expired or was deleted"})
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


class _Mirror:
    """A single-flight follower's view of its leader's frames (see `api.mirror`)."""

    def __init__(self, follower: Record | None) -> None:
        self.follower = follower
        self._own = f'"id":"{follower["id"]}"'.encode() if follower else b""

    def out(self, frame: bytes) -> bytes:
        if self.follower is None or not events.is_done(frame):
            return frame
        return mirror.done_frame(frame, self.follower)

    def own_end(self, frame: bytes, last: int) -> bytes | None:
        """The follower's own `done` (it was cancelled), numbered after what was sent."""
        if not self._own or not events.is_done(frame) or self._own not in frame:
            return None
        return events.frame(last + 1, events.DONE, events.parse_frame(frame).data)


async def job_events(store: JobStore, hub: Hub, job_id: str, after: int,
                     keepalive: float, draining: asyncio.Event | None = None,
                     follower: Record | None = None) -> AsyncIterator[bytes]:
    """Yield the job's frames after `after` until its `done` event (or, when the process is
    stopping, a `reconnect` event). For a single-flight `follower`, `job_id` is its leader's:
    the frames are the leader's, `done` rewritten as the follower's, and the follower's own
    cancellation ends the stream."""
    draining = draining or asyncio.Event()
    view = _Mirror(follower)
    channels = [job_id] if follower is None else [job_id, follower["id"]]
    mailbox = await hub.subscribe(job_id)
    for other in channels[1:]:
        await hub.subscribe(other, mailbox)
    cursor = _Cursor(after)
    records = [keys.job(channel) for channel in channels]
    try:
        backlog = await store.read_events(job_id, cursor.last)
        for frame in backlog:
            if cursor.accept(frame):
                yield view.out(frame)
        if not backlog and after and await _ended_before(store, job_id, after):
            return  # the client already has the whole stream, `done` included
        async for frame in _live(store, mailbox, job_id, records, cursor, view, keepalive,
                                 draining):
            yield frame
    finally:
        for channel in channels:
            hub.unsubscribe(channel, mailbox)


async def _live(store: JobStore, mailbox: Mailbox, job_id: str, records: list[str],
                cursor: _Cursor, view: _Mirror, keepalive: float,
                draining: asyncio.Event) -> AsyncIterator[bytes]:
    """The frames announced after the log was read, until `done`, or until a quiet period
    finds one of the `records` gone."""
    while not cursor.done:
        received = None if draining.is_set() else await mailbox.next(keepalive)
        if received is None and draining.is_set():
            yield RECONNECT
            return
        frame = received or b""
        if (ended := view.own_end(frame, cursor.last)) is not None:
            yield ended
            return
        if frame and events.frame_id(frame) <= cursor.last:
            continue  # already sent from the log
        if frame and cursor.accept(frame):
            yield view.out(frame)
            continue
        # A gap or a quiet period: the log is the truth.
        fresh = await store.read_events(job_id, cursor.last)
        caught_up = [f for f in fresh if cursor.accept(f)]
        for missed in caught_up:
            yield view.out(missed)
        if not frame and not caught_up:
            if await store.redis.exists(*records) < len(records):
                yield GONE
                return
            yield KEEPALIVE


async def _ended_before(store: JobStore, job_id: str, position: int) -> bool:
    last = await store.last_event(job_id)
    return last is not None and events.is_done(last) and events.frame_id(last) <= position
