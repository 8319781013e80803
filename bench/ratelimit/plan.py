"""What `bench.ratelimit` runs: the limits, the job mix of Part A and the streams of Part B."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

from bench.common.output import RESULTS_DIR
from shared import models
from shared.settings import Settings

RESULTS = RESULTS_DIR / "ratelimit.json"
MODEL = models.resolve("sonnet")
LOW_TIER = {"rpm": 50, "itpm": 30_000, "otpm": 8_000}
BATCH_TOKENS, INTERACTIVE_TOKENS = 200, 100
INTERACTIVE_SHARE = 0.2
WORKERS, SLOTS, QUEUES = 4, 50, "interactive,batch"
STREAM_SLOTS, STREAM_TPS, STREAM_TTFT_MS = 1200, 0.5, 200
STEADY = (0.3, 0.9)  # share of the window over which the steady-state rate is taken
RESERVE = float(Settings.model_fields["interactive_reserve"].default)
BASELINE_ENV = {"LIMITER_ENABLED": "false", "MAX_RETRIES": "10", "JOB_MAX_ATTEMPTS": "20"}


@dataclass(frozen=True)
class Plan:
    jobs: int
    scale: int
    streams: int  # Part B: jobs (and SDK streams) at once
    stream_tokens: int  # Part B: tokens per stream

    @property
    def interactive(self) -> int:
        return round(self.jobs * INTERACTIVE_SHARE)

    @property
    def batch(self) -> int:
        return self.jobs - self.interactive

    @property
    def limits(self) -> dict[str, int]:
        return {name: value * self.scale for name, value in LOW_TIER.items()}

    @property
    def demand(self) -> int:
        """Output tokens the run needs (every reply fills its max_tokens)."""
        return self.batch * BATCH_TOKENS + self.interactive * INTERACTIVE_TOKENS

    @property
    def expected_window(self) -> float:
        """Seconds the limiter run needs: the demand less the part of the initial full OTPM
        bucket that batch may use (not the interactive reserve), at limit/60 per second."""
        return max(5.0, 60 * (self.demand / self.limits["otpm"] - (1 - RESERVE)))

    @property
    def stream_seconds(self) -> float:
        return STREAM_TTFT_MS / 1000 + self.stream_tokens / STREAM_TPS


def make_plan(args: argparse.Namespace) -> Plan:
    quick = args.quick
    plan = Plan(jobs=args.jobs or (300 if quick else 2000), scale=1,
                streams=args.streams or (300 if quick else 1100),
                stream_tokens=6 if quick else 20)
    if args.scale:
        return replace(plan, scale=args.scale)
    # K such that the limiter run lasts about `target` seconds (see expected_window).
    target = 36.0 if quick else 75.0
    otpm = plan.demand / (target / 60 + 1 - RESERVE)
    return replace(plan, scale=max(1, round(otpm / LOW_TIER["otpm"])))
