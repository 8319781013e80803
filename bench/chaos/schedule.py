"""The fault schedule: a worker SIGKILLed every `kill_every` seconds (and replaced), Redis
restarted twice, one API restarted once — each blow logged with its time and what it did."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from bench.chaos.plan import Plan
from bench.chaos.recovery import RecoveryLog, track_kill
from bench.chaos.stack import Stack
from bench.common.output import log


@dataclass
class Blow:
    at: float  # seconds into the run
    what: str
    detail: dict[str, Any] = field(default_factory=dict)


def timetable(plan: Plan) -> list[tuple[float, str]]:
    """(seconds into the run, action) in order: kills every `kill_every` s within the
    window, Redis restarts and the API restart at their fractions of it."""
    blows = [(t * plan.kill_every, "kill_worker")
             for t in range(1, int(plan.seconds // plan.kill_every) + 1)]
    blows += [(f * plan.seconds, "restart_redis") for f in plan.redis_restarts_at]
    blows.append((plan.api_restart_at * plan.seconds, "restart_api"))
    return sorted(blows)


class Schedule:
    def __init__(self, stack: Stack, plan: Plan, recovery: RecoveryLog) -> None:
        self.stack = stack
        self.plan = plan
        self.recovery = recovery
        self.blows: list[Blow] = []
        self.redis_restarts = 0

    async def run(self, start: float) -> None:
        for at, action in timetable(self.plan):
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            began = time.monotonic() - start
            detail = await getattr(self, action)()
            self.blows.append(Blow(round(began, 1), action, detail))
            log(f"t={began:5.1f}s {action} {detail}")

    async def kill_worker(self) -> dict[str, Any]:
        victim, owners = self.stack.kill_worker()
        killed_at = time.time()
        client = await asyncio.to_thread(self.stack.setup.master)
        watcher = aioredis.Redis(port=client.connection_pool.connection_kwargs["port"],
                                 socket_timeout=10)
        held = await track_kill(client, watcher, owners, killed_at, self.recovery)
        detail: dict[str, Any] = {"worker": victim.name, "jobs_held": held}
        try:
            replacement = await asyncio.to_thread(self.stack.start_worker)
        except (TimeoutError, RuntimeError) as exc:  # Redis away: the next kill tries again
            detail["replacement_error"] = str(exc).splitlines()[0]
            return detail
        return {**detail, "replacement": replacement.name,
                "replacement_ready_s": round(time.time() - killed_at, 1)}

    async def restart_redis(self) -> dict[str, Any]:
        # The first restart is an orderly SIGTERM, the second a SIGKILL (AOF everysec: up
        # to a second of writes may be lost); with Sentinel both kill the master.
        kill = self.redis_restarts % 2 == 1 or self.plan.variant == "sentinel"
        self.redis_restarts += 1
        return await asyncio.to_thread(self.stack.setup.restart, kill)

    async def restart_api(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.stack.restart_api, 0)
