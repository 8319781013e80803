"""Rate limits as Anthropic enforces them: continuously refilling token buckets.

Three buckets (requests, input tokens, output tokens), each holding at most one minute's limit
and refilling at limit/60 per second. Output tokens are charged at `max_tokens` on admission and
the unused part refunded at the end, as the API estimates OTPM. The `anthropic-ratelimit-*`
headers let a client under test pace itself, so they are computed from the same buckets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from simulator.wire import rfc3339


class TokenBucket:
    """A bucket of `per_minute` capacity; the level may go negative after an oversized charge."""

    __slots__ = ("capacity", "level", "rate", "updated")

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> float:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now
        return self.level

    def shortfall_seconds(self, amount: float, now: float) -> float:
        """Seconds until `amount` (capped at capacity, so huge asks are not starved) is there."""
        missing = min(amount, self.capacity) - self.refill(now)
        return 0.0 if missing <= 0 else missing / self.rate

    def take(self, amount: float, now: float) -> None:
        self.refill(now)
        self.level -= amount

    def give(self, amount: float, now: float) -> None:
        self.refill(now)
        self.level = min(self.capacity, self.level + amount)

    def seconds_until_full(self, now: float) -> float:
        return max(0.0, (self.capacity - self.refill(now)) / self.rate)

    def resize(self, per_minute: int, now: float) -> None:
        """New limit; keep what was used so far rather than granting a fresh minute."""
        used = self.capacity - self.refill(now)
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity - used


@dataclass(frozen=True, slots=True)
class Refusal:
    retry_after: int
    message: str


_NAMES = {"requests": "requests", "input-tokens": "input tokens", "output-tokens": "output tokens"}


class RateLimiter:
    """Admission control and header reporting over the three buckets; 0 disables one."""

    def __init__(
        self,
        rpm: int = 0,
        itpm: int = 0,
        otpm: int = 0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.wall = wall
        self.buckets: dict[str, TokenBucket] = {}
        self.configure(rpm, itpm, otpm)

    def configure(self, rpm: int, itpm: int, otpm: int) -> None:
        now = self.clock()
        for name, limit in (("requests", rpm), ("input-tokens", itpm), ("output-tokens", otpm)):
            bucket = self.buckets.get(name)
            if limit <= 0:
                self.buckets.pop(name, None)
            elif bucket is None:
                self.buckets[name] = TokenBucket(limit, now)
            elif bucket.capacity != limit:
                bucket.resize(limit, now)

    def reset(self) -> None:
        now = self.clock()
        for bucket in self.buckets.values():
            bucket.level, bucket.updated = bucket.capacity, now

    def admit(self, input_tokens: int, max_tokens: int) -> Refusal | int:
        """Charge the buckets, returning the output charge to settle later, or a Refusal."""
        now = self.clock()
        asks = {"requests": 1, "input-tokens": input_tokens, "output-tokens": max_tokens}
        waits = {
            name: bucket.shortfall_seconds(asks[name], now)
            for name, bucket in self.buckets.items()
        }
        blocked = [name for name, wait in waits.items() if wait > 0]
        if blocked:
            worst = max(blocked, key=lambda name: waits[name])
            limit = int(self.buckets[worst].capacity)
            message = (
                f"This request would exceed your organization's rate limit of {limit} "
                f"{_NAMES[worst]} per minute. Please reduce the prompt length or the maximum "
                "tokens requested, or try again later."
            )
            return Refusal(max(1, math.ceil(waits[worst])), message)
        for name, bucket in self.buckets.items():
            bucket.take(asks[name], now)
        return max_tokens

    def settle(self, charged: int, used: int) -> None:
        """Refund the output tokens charged at admission but never generated."""
        bucket = self.buckets.get("output-tokens")
        if bucket is not None and charged > used:
            bucket.give(charged - used, self.clock())

    def headers(self) -> dict[str, str]:
        """Each bucket's limit, remaining and reset, from the same levels `admit` reads: a
        call that asks no more than `remaining` is admitted. `tokens-*` is the most restrictive
        token bucket, as the API documents it (never a sum, which could promise input tokens
        that are not there)."""
        now, wall = self.clock(), self.wall()
        out: dict[str, str] = {}
        for name, bucket in self.buckets.items():
            out.update(_bucket_headers(name, bucket, now, wall))
        tight = [self.buckets[n] for n in ("input-tokens", "output-tokens") if n in self.buckets]
        if tight:
            tightest = min(tight, key=lambda bucket: bucket.refill(now))
            out.update(_bucket_headers("tokens", tightest, now, wall))
        return out


def _bucket_headers(name: str, bucket: TokenBucket, now: float, wall: float) -> dict[str, str]:
    prefix = f"anthropic-ratelimit-{name}"
    return {
        f"{prefix}-limit": str(int(bucket.capacity)),
        f"{prefix}-remaining": str(max(0, math.floor(bucket.refill(now)))),
        f"{prefix}-reset": rfc3339(math.ceil(wall + bucket.seconds_until_full(now))),
    }
