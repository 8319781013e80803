"""Token coalescing: the first token of a burst goes out at once, the rest are merged for a few
milliseconds, so Redis and the SSE relay see at most ~1/window events per stream per second
however fast Claude streams, and time to first token gains nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

# `emit(text, seq, pieces)` appends a chunk (merged from `pieces` added texts, each a delta of
# the upstream's stream) and answers its event id, or a refusal code (< 0).
Emit = Callable[[str, int, int], Awaitable[int]]


class Coalescer:
    """Buffers text and hands it to `emit` in merged chunks, one emit at a time, in order, at
    least `window` seconds apart; no text is ever skipped.

    The window is kept as a time (when the next emit may go) rather than as a wait after each
    emit: Claude's deltas mostly arrive further apart than the window, and then a chunk costs
    one task and nothing else. The drain task is never cancelled mid-emit (a half-sent Redis
    call would poison its connection); it is woken instead.

    Sequence numbers. The store appends a chunk only if its `seq` is greater than the last one
    it stored for this owner, and otherwise answers as if it had (a resend after a lost reply).
    An emit that raised may or may not have reached the log — a reply lost on the way back
    looks just like a request lost on the way there — so the rule is:

    - each new chunk takes the next `seq`, greater than every one sent before;
    - a chunk whose emit raised is sent again exactly as it was, same text and same `seq`,
      until an emit of it returns: then it is in the log exactly once, whichever way it failed.
      Merging later text into it would lose or repeat text: under the same `seq` the merged
      resend is taken for the stored chunk when the first try did land (the new text is
      dropped); under a fresh one the first try's text is logged twice;
    - text added meanwhile waits behind it and goes, merged, as the next chunk.

    A failing chunk is tried again after a backoff (`backoff` doubling up to `max_backoff`)
    for `patience` seconds. Past that, or when it still fails on the one retry that `flush`
    waits for, `flush` raises the emit's error: the attempt ends there and the job's failure
    path runs. The drain task itself never raises.
    """

    def __init__(self, emit: Emit, window: float = 0.01, *, backoff: float = 0.05,
                 max_backoff: float = 1.0, patience: float = 10.0) -> None:
        self._emit = emit
        self._window = window
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._patience = patience
        self._buffer: list[str] = []
        self._held: tuple[str, int, int] | None = None  # (text, seq, pieces) until stored
        self._seq = 0
        self._task: asyncio.Task[None] | None = None
        self._next_at = 0.0  # loop time before which the next emit waits
        self._pause: asyncio.Future[None] | None = None
        self._hurry = False
        self._failures = 0  # failed emits in a row
        self._failing_since = 0.0
        self._error: Exception | None = None  # why the text cannot be delivered
        self.refused: int = 0  # the emit's refusal code (< 0), once it refused
        self._uncounted = 0  # deltas without text not yet sent along with a chunk

    def add(self, text: str) -> None:
        """One delta of the upstream's stream and the text it streamed."""
        if self.refused:
            return
        self._buffer.append(text)
        if self._task is None and self._error is None:
            self._task = asyncio.create_task(self._drain())

    def count(self) -> None:
        """One delta that streamed no text (a tool call's fields around the one streamed):
        counted all the same, as what a worker's death leaves to bill goes by deltas (see
        `JobStore.append_token`); it rides with the next chunk, or alone as an empty one."""
        self._uncounted += 1
        if not self.refused and self._task is None and self._error is None:
            self._task = asyncio.create_task(self._drain())

    def _pending(self) -> bool:
        return (bool(self._held or self._buffer or self._uncounted) and not self.refused
                and self._error is None)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending():
                early = self._next_at - loop.time()
                if early > 0 and (self._failures or not self._hurry):  # a backoff is kept
                    await self._wait(loop, early)
                    continue
                if self._held is None:
                    self._seq += 1
                    pieces, self._uncounted = len(self._buffer) + self._uncounted, 0
                    self._held = ("".join(self._buffer), self._seq, pieces)
                    self._buffer.clear()
                await self._send(loop, *self._held)
        finally:
            self._task = None

    async def _send(self, loop: asyncio.AbstractEventLoop, text: str, seq: int,
                    pieces: int) -> None:
        last_chance = self._hurry and self._failures > 0  # a retry `flush` waits for
        try:
            code = await self._emit(text, seq, pieces)
        except Exception as exc:  # kept for `flush`: a task's exception would go unobserved
            self._failed(loop, exc, last_chance)
            return
        self._held, self._failures = None, 0
        self._next_at = loop.time() + self._window
        if code < 0:
            self.refused = code
            self._buffer.clear()

    def _failed(self, loop: asyncio.AbstractEventLoop, exc: Exception, last_chance: bool) -> None:
        now = loop.time()
        if not self._failures:
            self._failing_since = now
        self._failures += 1
        if last_chance or now - self._failing_since >= self._patience:
            self._error = exc
            return
        self._next_at = now + min(self._max_backoff, self._backoff * 2 ** (self._failures - 1))

    async def _wait(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        """Sleep until the window is over or `flush` cuts it short."""
        self._pause = loop.create_future()
        timer = loop.call_later(seconds, _settle, self._pause)
        try:
            await self._pause
        finally:
            timer.cancel()
            self._pause = None

    async def flush(self) -> None:
        """Emit everything added so far, without waiting out the window.

        Raises the emit's error when the text could not be delivered. The undelivered text is
        then dropped: it belonged to an attempt that is over, and the next attempt begins with
        a `reset` if any of it reached clients."""
        self._hurry = True
        try:
            if self._pause is not None:
                _settle(self._pause)
            while self._task is not None:
                await asyncio.shield(self._task)
            if self._pending():
                self._task = asyncio.create_task(self._drain())
                await asyncio.shield(self._task)
        finally:
            self._hurry = False
        if self._error is not None:
            error, self._error = self._error, None
            self._held, self._failures, self._uncounted = None, 0, 0
            self._buffer.clear()
            raise error


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
