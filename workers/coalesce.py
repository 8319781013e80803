"""Token coalescing: the first token of a burst goes out at once, the rest are merged for a few
milliseconds, so Redis and the SSE relay see at most ~1/window events per stream per second
however fast Claude streams, and time to first token gains nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class Coalescer:
    """Buffers text and hands it to `emit` in merged chunks, one emit at a time, in order, at
    least `window` seconds apart.

    The window is kept as a time (when the next emit may go) rather than as a wait after each
    emit: Claude's deltas mostly arrive further apart than the window, and then a chunk costs
    one task and nothing else. The drain task is never cancelled mid-emit (a half-sent Redis
    call would poison its connection); it is woken instead.
    """

    def __init__(self, emit: Callable[[str], Awaitable[int]], window: float = 0.01) -> None:
        self._emit = emit
        self._window = window
        self._buffer: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._next_at = 0.0  # loop time before which the next emit waits
        self._pause: asyncio.Future[None] | None = None
        self._hurry = False
        self.refused: int = 0  # the emit's refusal code (< 0), once it refused

    def add(self, text: str) -> None:
        if self.refused:
            return
        self._buffer.append(text)
        if self._task is None:
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._buffer and not self.refused:
                early = self._next_at - loop.time()
                if early > 0 and not self._hurry:
                    await self._wait(loop, early)
                    continue
                chunk = "".join(self._buffer)
                self._buffer.clear()
                code = await self._emit(chunk)
                self._next_at = loop.time() + self._window
                if code < 0:
                    self.refused = code
                    self._buffer.clear()
        finally:
            self._task = None

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
        """Emit everything added so far, without waiting out the window."""
        self._hurry = True
        try:
            if self._pause is not None:
                _settle(self._pause)
            while self._task is not None:
                await asyncio.shield(self._task)
            if self._buffer and not self.refused:
                self._task = asyncio.create_task(self._drain())
                await asyncio.shield(self._task)
        finally:
            self._hurry = False


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
