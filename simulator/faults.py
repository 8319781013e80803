"""Fault injection: random failures at configured rates, plus a queue of one-shot faults.

Retry and recovery logic can only be tested if failures happen exactly when a test wants them,
so a test queues precise faults (status answers, mid-stream error events, dropped connections,
extra latency) that the next matching calls consume in order. A chaos run wants the opposite,
every kind of failure at random: the `fail_*_rate` settings draw one of RANDOM_FAULTS per call,
from a generator seeded by `seed`, so a run's failures repeat with its seed.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from simulator.config import FAULT_RATES, SimConfig
from simulator.wire import DEFAULT_MESSAGES, ERROR_TYPE_STATUS, STATUS_ERROR_TYPES, ApiError

KINDS = ("status", "stream_error", "drop", "delay_ms")
_SPEC_KEYS = {
    "kind", "count", "status", "retry_after", "error_type", "message", "after_tokens", "ms",
    "headers", "path",
}


@dataclass(slots=True)
class Fault:
    """One queued fault; `count` calls on `path` consume it."""

    kind: str
    count: int = 1
    status: int = 529
    retry_after: int | None = None
    error_type: str | None = None
    message: str | None = None
    after_tokens: int = 0
    ms: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    path: str = "/v1/messages"

    def resolved_type(self) -> str:
        if self.error_type:
            return self.error_type
        if self.kind == "stream_error":
            return "overloaded_error"
        return STATUS_ERROR_TYPES.get(self.status, "api_error")

    def resolved_message(self) -> str:
        error_type = self.resolved_type()
        return self.message or DEFAULT_MESSAGES.get(error_type, f"Simulated {error_type}")

    def as_error(self) -> ApiError:
        """The HTTP error this fault stands for when it strikes before any body is sent."""
        error_type = self.resolved_type()
        status = self.status
        if self.kind == "stream_error":
            status = ERROR_TYPE_STATUS.get(error_type, 500)
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers["retry-after"] = str(self.retry_after)
        return ApiError(status, self.resolved_message(), error_type, headers)


# What each random fault answers. A bare 429 is what a spend limit looks like unless the API
# says to retry it; a stream fault strikes after a few tokens, when a client has shown some.
RANDOM_FAULTS: dict[str, Fault] = {
    "fail_529_rate": Fault("status", status=529),
    "fail_500_rate": Fault("status", status=500),
    "fail_429_rate": Fault("status", status=429, retry_after=1),
    "fail_429_bare_rate": Fault("status", status=429, headers={"x-should-retry": "true"}),
    "fail_stream_rate": Fault("stream_error", error_type="overloaded_error", after_tokens=3),
    "fail_drop_rate": Fault("drop", after_tokens=3),
}
assert tuple(RANDOM_FAULTS) == FAULT_RATES


def parse_fault(spec: Any) -> Fault:
    """Validate a control-endpoint fault spec; ValueError explains what is wrong."""
    if not isinstance(spec, dict):
        raise ValueError("fault spec must be a JSON object")
    unknown = sorted(set(spec) - _SPEC_KEYS)
    if unknown:
        raise ValueError(f"unknown fault fields: {', '.join(unknown)}")
    if spec.get("kind") not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    _check_field_types(spec)
    if not isinstance(spec.get("headers", {}), dict):
        raise ValueError("headers must be an object of strings")
    fault = Fault(**{k: v for k, v in spec.items() if v is not None})
    if fault.kind == "status" and not 400 <= fault.status <= 599:
        raise ValueError("status must be an HTTP error status (400-599)")
    fault.headers = {str(k).lower(): str(v) for k, v in fault.headers.items()}
    return fault


def _check_field_types(spec: dict[str, Any]) -> None:
    for name in ("count", "status", "retry_after", "after_tokens", "ms"):
        value = spec.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} must be an integer")
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0")
    for name in ("error_type", "message", "path"):
        if spec.get(name) is not None and not isinstance(spec[name], str):
            raise ValueError(f"{name} must be a string")


class FaultInjector:
    """The one-shot queue plus seeded random failures (reproducible for a given seed)."""

    def __init__(self, seed: int = 0) -> None:
        self.queue: list[Fault] = []
        self.rng = random.Random(seed)
        self.injected = 0
        self.random_counts: dict[str, int] = dict.fromkeys(FAULT_RATES, 0)

    def add(self, fault: Fault) -> None:
        if fault.count > 0:
            self.queue.append(fault)

    def clear(self, seed: int | None = None) -> None:
        self.queue.clear()
        self.injected = 0
        self.random_counts = dict.fromkeys(FAULT_RATES, 0)
        if seed is not None:
            self.rng.seed(seed)

    def snapshot(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in self.queue]

    def take(self, path: str) -> Fault | None:
        """Consume one use of the first queued fault for `path` (FIFO), if any."""
        for index, fault in enumerate(self.queue):
            if fault.path == path:
                fault.count -= 1
                if fault.count <= 0:
                    del self.queue[index]
                self.injected += 1
                return fault
        return None

    def random_fault(self, config: SimConfig) -> Fault | None:
        """Background flakiness: one draw picks at most one fault, by the configured rates (no
        draw at all when every rate is 0, so a seed's sequence is untouched by calm runs)."""
        rates = [(name, getattr(config, name)) for name in FAULT_RATES]
        if not any(rate > 0 for _, rate in rates):
            return None
        draw, threshold = self.rng.random(), 0.0
        for name, rate in rates:
            threshold += rate
            if draw < threshold:
                self.injected += 1
                self.random_counts[name] += 1
                return RANDOM_FAULTS[name]
        return None
