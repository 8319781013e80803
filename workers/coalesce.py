"""Token coalescing: the first token of a burst goes out at once, the rest are merged for a few
milliseconds, so Redis and the SSE relay see at most ~1/window events per stream per second
however fast Claude streams, and time to first token gains nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class Coalescer:
    """Buffers text and hands it to `emit` in merged chunks, one emit at a time, in order.

    The drain task is never cancelled mid-emit (a half-sent Redis call would poison its
    connection); it is woken or told to stop instead.
    """

    def __init__(self, emit: Callable[[str], Awaitable[int]], window: float = 0.01) -> None:
        self._emit = emit
        self._window = window
        self._buffer: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._hurry = False
        self._stopped = False
        self.refused: int = 0  # the emit's refusal code (< 0), once it refused

    def add(self, text: str) -> None:
        if self._stopped:
            return
        self._buffer.append(text)
        if self._task is None:
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._buffer and not self._stopped:
                chunk = "".join(self._buffer)
                self._buffer.clear()
                code = await self._emit(chunk)
                if code < 0:
                    self.refused, self._stopped = code, True
                    return
                if not self._hurry:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._window)
        finally:
            self._task = None

    async def flush(self) -> None:
        """Emit everything added so far, without waiting out the window."""
        self._hurry = True
        self._wake.set()
        while self._task is not None:
            await asyncio.shield(self._task)
        if self._buffer and not self._stopped:
            self._task = asyncio.create_task(self._drain())
            await asyncio.shield(self._task)
        self._hurry = False
        self._wake.clear()

    async def stop(self) -> None:
        """Drop what is buffered (a failed or cancelled attempt's tail) and let the drain end."""
        self._stopped = True
        self._buffer.clear()
        self._wake.set()
        if self._task is not None:
            await asyncio.shield(self._task)

    def restart(self) -> None:
        """Accept text again, for the next attempt."""
        self._stopped = False
        self._wake.clear()
