"""Percentiles, spreads and ratios of a benchmark's samples."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN samples are left out."""
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rank_percentile(samples: Sequence[float], q: float) -> float:
    """The sample at rank `q * n` (q a fraction, 0.99 for p99), without interpolation."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spread(seconds: Sequence[float]) -> dict[str, float]:
    """Sample count, p50, p99 and max, in milliseconds."""
    ms = [1000 * s for s in seconds if not math.isnan(s)]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(percentile(ms, 100), 2),
    }


def ratio(value: float | None, base: float | None) -> float | None:
    """value / base to three places; None when either is missing, NaN, or base is zero."""
    if value is None or base is None or base == 0 or math.isnan(value) or math.isnan(base):
        return None
    return round(value / base, 3)


def iso_seconds(value: str) -> float:
    """An API timestamp (`2025-01-01T00:00:00.123Z`) as Unix seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
