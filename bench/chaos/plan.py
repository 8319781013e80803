"""What one chaos run does: how many jobs of which kinds over how long, which faults when."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
from typing import Any

# Upstream faults per call, 10 % in all, spread over every kind the simulator can throw.
FAULT_RATES = {
    "529": 0.02,  # overloaded
    "500": 0.02,  # internal error
    "429": 0.015,  # rate limited, with retry-after
    "429_bare": 0.015,  # rate limited, x-should-retry: true and no retry-after
    "stream": 0.015,  # overloaded_error event mid-stream
    "drop": 0.015,  # connection dropped mid-stream
}


@dataclass(frozen=True)
class Plan:
    variant: str
    jobs: int
    seconds: float  # the submission window; faults happen within it
    drain_seconds: float  # after it, how long to wait for every job to finish
    batch_share: float = 0.10
    drought_share: float = 0.30  # of the jobs sent one by one; the rest are chats
    follow_share: float = 0.25  # of the jobs sent one by one, followed over SSE
    submitters: int = 4
    chat_max_tokens: int = 120
    tokens_per_second: float = 100.0  # the simulator's pace, so kills find streams running
    kill_every: float = 20.0
    redis_restarts_at: tuple[float, ...] = (0.3, 0.7)  # fractions of `seconds`
    api_restart_at: float = 0.5
    seed: int = 1
    fault_rates: dict[str, float] = field(default_factory=lambda: dict(FAULT_RATES))

    @property
    def batch_jobs(self) -> int:
        return max(1, round(self.jobs * self.batch_share))

    @property
    def single_jobs(self) -> int:
        return self.jobs - self.batch_jobs

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "batch_jobs": self.batch_jobs, "single_jobs": self.single_jobs}


def make_plan(args: argparse.Namespace) -> Plan:
    jobs = args.jobs or (200 if args.quick else 2000)
    seconds = args.seconds or (60.0 if args.quick else 240.0)
    return Plan(variant=args.variant, jobs=jobs, seconds=seconds,
                drain_seconds=args.drain or max(180.0, seconds), seed=args.seed)
