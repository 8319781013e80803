"""Part A's figures from one run: the share of the limit used, 429s, outcomes and latencies."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.common.stats import iso_seconds, percentile, ratio
from bench.ratelimit.jobs import Record
from bench.ratelimit.plan import RESERVE, STEADY, Plan
from bench.ratelimit.sampler import Sample


@dataclass
class MixRun:
    mode: str
    started: float
    records: list[Record]
    samples: list[Sample]
    stats: dict[str, Any]
    submit_errors: int
    limiter: dict[str, Any]  # the model's entry of GET /api/limits at the end
    cpu: dict[str, float]  # CPU seconds per role over the run


def elapsed(records: Sequence[Record], priority: str, since: str, until: str) -> list[float]:
    """Seconds from field `since` to field `until` of the jobs of one priority that have both."""
    return [iso_seconds(r[until]) - iso_seconds(r[since]) for r in records
            if r.get("priority") == priority and r.get(since) and r.get(until)]


def ledger(stats: dict[str, Any]) -> dict[str, int]:
    """What the simulator charged each bucket over the run."""
    codes = stats["requests"].get("/v1/messages", {})
    return {"rpm": int(codes.get("200", 0)), "itpm": int(stats["tokens"]["input_tokens"]),
            "otpm": int(stats["tokens"]["output_tokens"])}


def demand_window(run: MixRun) -> float:
    """Seconds from the reset to the first sample that saw the run's last upstream call."""
    total = sum(run.stats["requests"].get("/v1/messages", {}).values())
    last = next((s.at for s in run.samples if s.calls >= total), time.time())
    return last - run.started


def steady_rate(run: MixRun, bucket: str, limit: int, window: float) -> float:
    """The bucket's ledger rate (per second) once the initial bucket is spent (the ledger has
    passed one minute's limit and STEADY[0] of the window is over) until STEADY[1] of it."""
    low, high = (run.started + share * window for share in STEADY)
    inside = [s for s in run.samples if low <= s.at <= high and s.ledger(bucket) >= limit]
    if len(inside) < 2 or inside[-1].at <= inside[0].at:
        return math.nan
    return (inside[-1].ledger(bucket) - inside[0].ledger(bucket)) / (inside[-1].at - inside[0].at)


def utilisation(run: MixRun, limits: dict[str, int]) -> dict[str, Any]:
    used = ledger(run.stats)
    bucket = max(limits, key=lambda name: used[name] / limits[name])
    limit, window = limits[bucket], demand_window(run)
    capacity = limit + limit * window / 60
    steady = steady_rate(run, bucket, limit, window) / (limit / 60)
    return {"binding_bucket": bucket, "limit_per_minute": limit, "used": used[bucket],
            "ledger": used, "window_s": round(window, 2), "capacity": round(capacity),
            "utilisation": round(used[bucket] / capacity, 4),
            "steady_utilisation": round(steady, 4)}


def reserve_ceiling(figures: dict[str, Any]) -> float:
    """The best share a limiter run can reach when batch never touches the interactive reserve
    and no interactive job needs it: the reserve is still in the bucket at the end."""
    used, limit = figures["used"], figures["limit_per_minute"]
    return round(used / (used + RESERVE * limit), 4)


def upstream(stats: dict[str, Any], jobs: int) -> dict[str, Any]:
    codes = {k: int(v) for k, v in stats["requests"].get("/v1/messages", {}).items()}
    calls = sum(codes.values())
    return {"upstream_calls": calls, "upstream_by_status": codes,
            "upstream_429": codes.get("429", 0),
            "share_429": round(codes.get("429", 0) / calls, 4) if calls else math.nan,
            "calls_per_job": round(calls / jobs, 3) if jobs else math.nan}


def outcomes(records: Sequence[Record], expected: int) -> dict[str, Any]:
    statuses = Counter(r.get("status", "missing") for r in records)
    errors = Counter(json.loads(r["error"])["type"] for r in records if r.get("error"))
    return {"jobs": expected, "succeeded": statuses["succeeded"],
            "failed": expected - statuses["succeeded"], "statuses": dict(statuses),
            "errors": dict(errors)}


def latencies(records: Sequence[Record]) -> dict[str, float]:
    queue_i = elapsed(records, "interactive", "created_at", "started_at")
    ttft_i = elapsed(records, "interactive", "created_at", "first_token_at")
    queue_b = elapsed(records, "batch", "created_at", "started_at")
    return {"interactive_queue_p50_s": round(percentile(queue_i, 50), 3),
            "interactive_queue_p95_s": round(percentile(queue_i, 95), 3),
            "interactive_ttft_p50_s": round(percentile(ttft_i, 50), 3),
            "interactive_ttft_p95_s": round(percentile(ttft_i, 95), 3),
            "batch_queue_p50_s": round(percentile(queue_b, 50), 3)}


def limiter_counts(run: MixRun) -> dict[str, Any]:
    """How often workers asked the limiter for capacity and were told to wait, and how many
    batch jobs submission took (the API's pace under load)."""
    created = [iso_seconds(r["created_at"]) for r in run.records if r.get("priority") == "batch"]
    return {"limiter_admitted": run.limiter.get("admitted"),
            "limiter_waits": run.limiter.get("waits"),
            "batch_submit_s": round(max(created, default=run.started) - run.started, 2)}


def timeline(run: MixRun, every: float = 2.0) -> list[list[float]]:
    """[seconds since reset, upstream calls, calls answered 200, output tokens], every ~2 s."""
    rows: list[list[float]] = []
    for sample in run.samples:
        at = round(sample.at - run.started, 1)
        if not rows or at - rows[-1][0] >= every:
            rows.append([at, sample.calls, sample.requests, sample.output_tokens])
    return rows


def wall_time(run: MixRun) -> float:
    ends = [iso_seconds(r["finished_at"]) for r in run.records if r.get("finished_at")]
    return round(max(ends, default=time.time()) - run.started, 2)


def mix_figures(run: MixRun, plan: Plan) -> dict[str, Any]:
    shares = utilisation(run, plan.limits)
    if run.limiter:  # the limiter was on (it keeps the reserve)
        shares["ceiling_with_reserve"] = reserve_ceiling(shares)
    return {"mode": run.mode, **shares,
            **upstream(run.stats, len(run.records)), **outcomes(run.records, plan.jobs),
            **latencies(run.records), **limiter_counts(run), "submit_errors": run.submit_errors,
            "cpu_s": run.cpu, "workers_cpu_s": run.cpu["workers"], "redis_cpu_s": run.cpu["redis"],
            "timeline": timeline(run),
            "wall_s": wall_time(run)}


def mix_ratios(limited: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    names = ("share_429", "interactive_queue_p95_s", "interactive_ttft_p95_s", "utilisation",
             "steady_utilisation", "failed", "wall_s")
    return {name: ratio(limited[name], base[name]) for name in names}
