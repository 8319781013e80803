"""Simulator settings: one dataclass that the CLI, the project's own CLI and tests all build.

Only a whitelisted subset may change at runtime (through `POST /_sim/config`): the knobs a test
turns mid-run (limits, latency, failure rates), never the listening address or the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Field name -> (type, minimum, maximum); None means unbounded on that side.
_BOUNDS: dict[str, tuple[type, float | None, float | None]] = {
    "rpm": (int, 0, None),
    "itpm": (int, 0, None),
    "otpm": (int, 0, None),
    "ttft_ms": (float, 0, None),
    "tokens_per_second": (float, 0.001, None),
    "seed": (int, None, None),
    "fail_529_rate": (float, 0, 1),
    "fail_500_rate": (float, 0, 1),
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
        "fail_529_rate",
        "fail_500_rate",
        "batch_seconds_per_request",
        "reply_tokens",
        "stream_chunk_ms",
        "cache_min_tokens",
    }
)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything the simulator can be told; 0 for a limit means unlimited."""

    host: str = "127.0.0.1"
    port: int = 8900
    rpm: int = 0
    itpm: int = 0
    otpm: int = 0
    ttft_ms: float = 50.0
    tokens_per_second: float = 200.0
    seed: int = 0
    fail_529_rate: float = 0.0
    fail_500_rate: float = 0.0
    batch_seconds_per_request: float = 0.05
    reply_tokens: int = 0
    api_key: str | None = None
    # Minimum spacing of stream writes; 0 picks 20 ms, so fast streams send a few tokens a write.
    stream_chunk_ms: float = 0.0
    cache_min_tokens: int = 1024

    def __post_init__(self) -> None:
        for name, (kind, low, high) in _BOUNDS.items():
            _check_value(name, getattr(self, name), kind, low, high)

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
