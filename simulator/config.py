"""Simulator settings: one dataclass that the CLI, the project's own CLI and tests all build.

Only a whitelisted subset may change at runtime (through `POST /_sim/config`): the knobs a test
turns mid-run (limits, latency, failure rates), never the listening address or the key.

Rate limits default to a tier, as every real organisation has one: the real API sends
`anthropic-ratelimit-*` headers on every answer, and a client that paces on them must meet them
here too. DEFAULT_TIER is the shape of Anthropic's documented Tier 4 for Sonnet (4 000 RPM,
2 M input and 400 K output tokens per minute) at about ten times its size, as a custom limit
would be: Sidecar on a 2-core machine peaks far below its 833 calls and 66 000 output tokens a
second, so the tier never binds the project's tests and benches, while every answer reports it
and the buckets enforce exactly what they report. A limit of 0 drops that bucket and its
headers (no real tier does): the way to test a client that gets no headers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Requests, input tokens and output tokens per minute when none are configured.
DEFAULT_TIER = {"rpm": 50_000, "itpm": 20_000_000, "otpm": 4_000_000}

# Random faults, each a share of /v1/messages calls; one draw per call picks at most one, in
# this order (so their sum may not pass 1). What each answers: see `simulator.faults`.
FAULT_RATES = ("fail_529_rate", "fail_500_rate", "fail_429_rate", "fail_429_bare_rate",
               "fail_stream_rate", "fail_drop_rate")

# Field name -> (type, minimum, maximum); None means unbounded on that side.
_BOUNDS: dict[str, tuple[type, float | None, float | None]] = {
    "rpm": (int, 0, None),
    "itpm": (int, 0, None),
    "otpm": (int, 0, None),
    "ttft_ms": (float, 0, None),
    "tokens_per_second": (float, 0.001, None),
    "seed": (int, None, None),
    **dict.fromkeys(FAULT_RATES, (float, 0, 1)),
    "batch_seconds_per_request": (float, 0, None),
    "reply_tokens": (int, 0, None),
    "stream_chunk_ms": (float, 0, None),
    "cache_min_tokens": (int, 0, None),
    "port": (int, 0, 65535),
}

RUNTIME_FIELDS = frozenset(
    {
        "seed",
        "rpm",
        "itpm",
        "otpm",
        "ttft_ms",
        "tokens_per_second",
        *FAULT_RATES,
        "batch_seconds_per_request",
        "reply_tokens",
        "stream_chunk_ms",
        "cache_min_tokens",
    }
)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything the simulator can be told; 0 for a limit means unlimited, with no headers."""

    host: str = "127.0.0.1"
    port: int = 8900
    rpm: int = DEFAULT_TIER["rpm"]
    itpm: int = DEFAULT_TIER["itpm"]
    otpm: int = DEFAULT_TIER["otpm"]
    ttft_ms: float = 50.0
    tokens_per_second: float = 200.0
    seed: int = 0
    fail_529_rate: float = 0.0
    fail_500_rate: float = 0.0
    fail_429_rate: float = 0.0
    fail_429_bare_rate: float = 0.0
    fail_stream_rate: float = 0.0
    fail_drop_rate: float = 0.0
    batch_seconds_per_request: float = 0.05
    reply_tokens: int = 0
    api_key: str | None = None
    # Minimum spacing of stream writes; 0 picks 20 ms, so fast streams send a few tokens a write.
    stream_chunk_ms: float = 0.0
    cache_min_tokens: int = 1024

    def __post_init__(self) -> None:
        for name, (kind, low, high) in _BOUNDS.items():
            _check_value(name, getattr(self, name), kind, low, high)
        if sum(getattr(self, name) for name in FAULT_RATES) > 1:
            raise ValueError("the fail_*_rate fields share one draw: their sum must be <= 1")

    def public(self) -> dict[str, Any]:
        """The config as JSON for `GET /_sim/config`; the key itself is never echoed."""
        data = dataclasses.asdict(self)
        data["api_key"] = None if self.api_key is None else "***"
        return data

    def patched(self, patch: Mapping[str, Any]) -> SimConfig:
        """A copy with runtime-changeable fields replaced; raises ValueError on anything else."""
        unknown = sorted(set(patch) - RUNTIME_FIELDS)
        if unknown:
            raise ValueError(f"not changeable at runtime: {', '.join(unknown)}")
        coerced = {name: _coerce(name, value) for name, value in patch.items()}
        return dataclasses.replace(self, **coerced)


def _coerce(name: str, value: Any) -> Any:
    kind = _BOUNDS[name][0]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: expected a number")
    if kind is int and value != int(value):
        raise ValueError(f"{name}: expected an integer")
    return kind(value)


def _check_value(name: str, value: Any, kind: type, low: float | None, high: float | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: expected {kind.__name__}, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name}: must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name}: must be <= {high}, got {value}")
