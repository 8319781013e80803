"""The one shape of a housekeeping loop: a step every few seconds, forever, that outlives every
error of what it talks to (Redis restarting, a timeout) and says so in the log, once per
outage — a loop that dies silently is a defect."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


async def every(seconds: float, name: str, step: Callable[[], Awaitable[None]],
                log: logging.Logger, at_once: bool = False,
                timeout: float | None = None) -> None:
    """Run `step` every `seconds` (first at once, or after one period; each run cut off after
    `timeout`, if given); a failure is logged as `<name> failed; retrying`, the first success
    after it as `<name> recovered`."""
    failing = False
    if not at_once:
        await asyncio.sleep(seconds)
    while True:
        try:
            async with asyncio.timeout(timeout):
                await step()
        except Exception:
            if not failing:
                log.warning("%s failed; retrying", name, exc_info=True)
            failing = True
        else:
            if failing:
                log.warning("%s recovered", name)
            failing = False
        await asyncio.sleep(seconds)
