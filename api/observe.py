"""Counting and logging every request: one JSON log line and one service-wide counter
(endpoint template and status) per answer, off the response's critical path."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("sidecar.api.access")


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_and_count(message: Message) -> None:
            await send(message)  # the answer first, its log line after
            if message["type"] == "http.response.start":
                self._count(scope, message["status"], started)

        await self.app(scope, receive, send_and_count)

    def _count(self, scope: Scope, status: int, started: float) -> None:
        route: Any = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        log.info("request", extra={"method": scope["method"], "endpoint": endpoint,
                                   "status": status,
                                   "ms": round((time.perf_counter() - started) * 1000, 2)})
        tally = getattr(scope["app"].state, "tally", None)
        if tally is not None:
            tally.request(endpoint, status)
