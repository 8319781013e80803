"""Upstream faults: each kind set as a rate through `POST /_sim/config` where the simulator
has that knob, else fed to its one-shot fault queue in proportion to the calls it answers (a
queued fault strikes the next call, so the share of calls hit is the same)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from typing import Any

from tests.simulator_fixtures import SimProcess

# Kind -> the simulator's rate knob.
RATE_KNOBS = {
    "529": "fail_529_rate",
    "500": "fail_500_rate",
    "429": "fail_429_rate",
    "429_bare": "fail_429_bare_rate",
    "stream": "fail_stream_rate",
    "drop": "fail_drop_rate",
}
MESSAGES = "/v1/messages"
FEED_EVERY = 0.5  # seconds


def queued_fault(kind: str, rng: random.Random) -> dict[str, Any]:
    """The one-shot fault spec standing for one occurrence of `kind`."""
    after = rng.randint(1, 40)
    specs: dict[str, dict[str, Any]] = {
        "529": {"kind": "status", "status": 529},
        "500": {"kind": "status", "status": 500},
        "429": {"kind": "status", "status": 429, "retry_after": 1},
        "429_bare": {"kind": "status", "status": 429, "headers": {"x-should-retry": "true"}},
        "stream": {"kind": "stream_error", "after_tokens": after},
        "drop": {"kind": "drop", "after_tokens": after},
    }
    return specs[kind]


class UpstreamFaults:
    """Configures the simulator's faults and, for kinds it has no rate for, feeds its queue."""

    def __init__(self, sim: SimProcess, rates: dict[str, float], seed: int) -> None:
        self.sim = sim
        self.rates = rates
        self.rng = random.Random(seed)
        self.native: dict[str, float] = {}
        self.fed: dict[str, float] = {}
        self.fed_count: Counter[str] = Counter()
        self.feed_errors = 0

    def configure(self) -> dict[str, str]:
        """Set the native rates; say how each kind is produced."""
        knobs = self.sim.control("GET", "/_sim/config")
        for kind, rate in self.rates.items():
            target = self.native if RATE_KNOBS[kind] in knobs else self.fed
            target[kind] = rate
        if self.native:
            self.sim.configure(**{RATE_KNOBS[k]: r for k, r in self.native.items()})
        return self.modes()

    def modes(self) -> dict[str, str]:
        return {**{k: f"{r:.1%} (simulator rate {RATE_KNOBS[k]})" for k, r in self.native.items()},
                **{k: f"{r:.1%} (queued by the bench; simulator has no {RATE_KNOBS[k]})"
                   for k, r in self.fed.items()}}

    def calls(self) -> int:
        stats = self.sim.stats()
        return sum((stats.get("requests") or {}).get(MESSAGES, {}).values())

    async def feed(self) -> None:
        """Until cancelled: for every call the simulator answered since the last look, draw
        each fed kind at its rate and queue what was drawn."""
        if not self.fed:
            return
        seen = await asyncio.to_thread(self.calls)
        while True:
            await asyncio.sleep(FEED_EVERY)
            try:
                now = await asyncio.to_thread(self.calls)
                for _ in range(max(0, now - seen)):
                    await self._draw()
                seen = now
            except OSError:
                self.feed_errors += 1

    async def _draw(self) -> None:
        draw, edge = self.rng.random(), 0.0
        for kind, rate in self.fed.items():
            edge += rate
            if draw < edge:
                spec = queued_fault(kind, self.rng)
                await asyncio.to_thread(self.sim.control, "POST", "/_sim/faults", spec)
                self.fed_count[kind] += 1
                return

    def stop_all(self) -> None:
        """No faults for the audit's own calls: rates to zero, queue emptied."""
        with contextlib.suppress(OSError):
            if self.native:
                self.sim.configure(**{RATE_KNOBS[k]: 0 for k in self.native})
            self.sim.control("DELETE", "/_sim/faults")
