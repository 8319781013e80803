"""The rate limiter every worker shares, through Redis.

A call reserves its estimated input tokens and its max_tokens before it goes out and gives back
what it did not use when the final usage arrives; the answers' `anthropic-ratelimit-*` headers
correct the limits (the real ones win over configured guesses); a 429 sets a cool-down that
every worker honours. Batch work is kept off a share of each bucket, so a person's chat always
finds capacity while a nightly batch runs.

A reservation in flight, and a call waiting for capacity, each lapse unless the process behind
them keeps refreshing them (`keep_alive`, `wait_in_line`): a worker killed mid-call gives its
capacity back within a lease (JOB_LEASE_SECONDS), like its jobs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared import keys, limiter_scripts, models
from shared.loops import every
from shared.record import as_str
from shared.redis import queue_script
from shared.settings import Settings

log = logging.getLogger("sidecar.worker")

BUCKETS = ("rpm", "itpm", "otpm")
_HEADERS = {"rpm": "requests", "itpm": "input-tokens", "otpm": "output-tokens"}


@dataclass(frozen=True)
class Admission:
    admitted: bool
    wait: float = 0.0
    reason: str = ""


def configured_limits(settings: Settings, model: str) -> dict[str, int]:
    """The settings' guess for a model (by id or alias); zeros where nothing is configured."""
    table = settings.rate_limits
    alias = models.family(model) or ""
    found = table.get(model) or table.get(alias) or table.get("*") or {}
    return {name: int(found.get(name, 0)) for name in BUCKETS}


def header_limits(headers: Mapping[str, str]) -> list[str]:
    """LEARN's arguments: limit and remaining of each bucket ('' where absent)."""
    values: list[str] = []
    for name in BUCKETS:
        prefix = f"anthropic-ratelimit-{_HEADERS[name]}-"
        values += [headers.get(prefix + "limit", ""), headers.get(prefix + "remaining", "")]
    return values


def estimate_input_tokens(request: Mapping[str, Any]) -> int:
    """A quick local count (about four characters a token, plus framing) — close enough to
    reserve with; the difference is settled from the real usage."""
    parts = [request.get("system") or "", request.get("messages") or [],
             request.get("tools") or []]
    chars = sum(len(p) if isinstance(p, str) else len(json.dumps(p)) for p in parts)
    return chars // 4 + 8


def counted_locally(estimate: int, exact_above: int) -> bool:
    """Whether the local estimate is the count to reserve with; above `exact_above`
    (COUNT_TOKENS_ABOVE) Claude's count_tokens counts the request instead."""
    return estimate < exact_above


def _admit_args(call_id: str, tokens_in: int, tokens_out: int, reserve: float,
                limits: Mapping[str, int], max_inflight: int, hold: float,
                probe: bool = True, requests: int = 1) -> list[str | int | float]:
    return [tokens_in, tokens_out, reserve, limits.get("rpm", 0), limits.get("itpm", 0),
            limits.get("otpm", 0), max_inflight, call_id, hold, int(probe), requests]


class Limiter:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._admit = redis.register_script(limiter_scripts.ADMIT)
        self._settle = redis.register_script(limiter_scripts.SETTLE)
        self._learn = redis.register_script(limiter_scripts.LEARN)
        self._cooldown = redis.register_script(limiter_scripts.COOLDOWN)
        self._keepalive = redis.register_script(limiter_scripts.KEEPALIVE)
        self._wait = redis.register_script(limiter_scripts.WAIT)
        self.lease = settings.job_lease_seconds
        self._held: dict[str, set[str]] = {}  # call ids in flight for this process, per scope
        self._known: set[str] = set()  # scopes already listed in Redis by this process
        self._learned: dict[str, float] = {}  # when this process last taught each scope

    @staticmethod
    def _keys(scope: str) -> list[str]:
        return [keys.limits(scope), keys.inflight(scope), keys.waiting(scope)]

    async def admit(self, scope: str, call_id: str, tokens_in: int, tokens_out: int,
                    reserve: float, limits: Mapping[str, int], max_inflight: int,
                    hold: float | None = None, probe: bool = True,
                    requests: int = 1) -> Admission:
        """One round trip: take capacity now, or learn how long to wait for it. The slot is
        held for `hold` seconds (a lease by default), and kept while this process lives."""
        hold = self.lease if hold is None else hold
        args = _admit_args(call_id, tokens_in, tokens_out, reserve, limits, max_inflight, hold,
                           probe, requests)
        result = await self._admit(self._keys(scope), args)
        return await self.admitted(scope, result, call_id if hold > 0 else None)

    def queue_admit(self, pipe: Pipeline, scope: str, call_id: str, tokens_in: int,
                    tokens_out: int, reserve: float, limits: Mapping[str, int],
                    max_inflight: int) -> None:
        """`admit` queued on a pipeline; its result goes to `admitted`."""
        args = _admit_args(call_id, tokens_in, tokens_out, reserve, limits, max_inflight,
                           self.lease)
        queue_script(pipe, self._admit, self._keys(scope), args)

    async def admitted(self, scope: str, result: Any, call_id: str | None = None) -> Admission:
        """An admission's answer (one that did not run — NOSCRIPT — admitted nothing); with
        `call_id`, an admitted call is kept alive until it is settled."""
        if isinstance(result, Exception):
            return Admission(False, 0.0, "error")
        ok, wait, reason = result
        if ok and call_id is not None:
            self._held.setdefault(scope, set()).add(call_id)
        if ok and scope not in self._known:
            await self.redis.sadd(keys.limit_scopes(), scope)
            self._known.add(scope)
        return Admission(bool(ok), float(as_str(wait)), as_str(reason))

    async def settle(self, scope: str, call_id: str, reserved_in: int, used_in: int,
                     reserved_out: int, used_out: int) -> None:
        # Forgotten first: a settle that fails in Redis leaves an entry that lapses on its own.
        self._held.get(scope, set()).discard(call_id)
        await self._settle(self._keys(scope),
                           [reserved_in, used_in, reserved_out, used_out, call_id])

    async def learn(self, scope: str, headers: Mapping[str, str], every: float = 0.25) -> None:
        """Correct the limits from an answer's headers — at most every `every` seconds per
        process and scope, since a busy worker gets many answers a second saying the same."""
        now = time.monotonic()
        if now - self._learned.get(scope, -every) < every:
            return
        self._learned[scope] = now
        await self._learn(self._keys(scope), header_limits(headers))

    async def keep_alive(self) -> None:
        """Refresh this process's reservations every quarter lease, for ever: they outlive it by
        at most a lease. Redis being away is logged and waited out, never the end of the loop —
        or every call in flight would lapse."""
        await every(self.lease / 4, "limiter keep-alive", self.refresh, log,
                    timeout=self.lease / 4)

    async def refresh(self) -> None:
        """Push every reservation this process holds one lease past Redis's now."""
        for scope, held in list(self._held.items()):
            if not held:
                del self._held[scope]
                continue
            await self._keepalive([keys.inflight(scope)], [self.lease, *held])

    async def wait_in_line(self, scope: str, call_id: str, ttl: float) -> None:
        """Count a call among those waiting for capacity for `ttl` seconds more (Redis's
        clock); a waiter repeats this on every nap, so a dead one stops counting."""
        await self._wait([keys.waiting(scope)], [call_id, ttl])

    async def leave_line(self, scope: str, call_id: str) -> None:
        await self.redis.zrem(keys.waiting(scope), call_id)

    async def cooldown(self, scope: str, seconds: float) -> None:
        await self._cooldown(self._keys(scope), [seconds])

    async def count(self, scope: str, field: str) -> None:
        await self.redis.hincrby(keys.limits(scope), field, 1)

    async def snapshot(self, scope: str) -> dict[str, Any]:
        """Limits, capacity remaining now, calls in flight, jobs waiting, upstream errors."""
        raw = await self.redis.hgetall(keys.limits(scope))
        state = {as_str(k): as_str(v) for k, v in raw.items()}
        seconds, micros = await self.redis.time()
        now = seconds + micros / 1_000_000  # the scripts' clock, not this host's
        since = now - float(state.get("ts") or now)
        limits, remaining = {}, {}
        for name in BUCKETS:
            limit = int(float(state.get(name) or 0))
            level = float(state.get(f"{name}_level") or limit)
            limits[name] = limit
            remaining[name] = (round(min(limit, level + since * limit / 60), 1)
                               if limit else None)
        await self.redis.zremrangebyscore(keys.inflight(scope), "-inf", now)
        return {
            "limits": limits,
            "remaining": remaining,
            "source": state.get("source", "settings"),
            "in_flight": await self.redis.zcard(keys.inflight(scope)),
            "max_in_flight": int(state.get("max_inflight") or 0),
            "waiting": await self.redis.zcount(keys.waiting(scope), now, "+inf"),
            "cooldown_seconds": round(max(0.0, float(state.get("cooldown_until") or 0) - now), 2),
            "admitted": int(state.get("admitted") or 0),
            "waits": int(state.get("waits") or 0),
            "upstream_429": int(state.get("upstream_429") or 0),
            "upstream_529": int(state.get("upstream_529") or 0),
        }

    async def scopes(self) -> list[str]:
        return sorted(as_str(s) for s in await self.redis.smembers(keys.limit_scopes()))
