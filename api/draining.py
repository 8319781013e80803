"""Telling SSE clients to reconnect when this API process is stopping.

uvicorn waits for open connections before it exits, and an event stream never ends by itself;
so on SIGTERM every stream sends a final `reconnect` event and closes, and the client resumes
with Last-Event-ID on another process without losing an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from types import FrameType
from typing import Any

from shared import events

RECONNECT_MS = 1000
# No id: it is this process's word to one client, not an event of the job's log.
RECONNECT = events.frame(None, events.RECONNECT, {"retry_ms": RECONNECT_MS},
                         retry_ms=RECONNECT_MS)


def watch_sigterm(draining: asyncio.Event) -> None:
    """Chain onto the server's SIGTERM handler (installed before the app starts)."""
    loop = asyncio.get_running_loop()
    previous: Any = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(draining.set)
        if callable(previous):
            previous(signum, frame)

    with contextlib.suppress(ValueError):  # not the main thread (in-process test clients)
        signal.signal(signal.SIGTERM, handler)
