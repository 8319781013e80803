"""Counters a test or benchmark reads back through `GET /_sim/stats`.

They answer the questions the simulator exists for: how many calls the service made and how they
ended, how many streams it held at once and whether it abandoned any, and how many tokens it
spent (synchronously and through batches), so budgets and retries can be asserted on, and a
chaos bench can hold what Sidecar billed against what the upstream would have.

The snapshot's fields:
- `requests`: answers by route and HTTP status; `requests_total`; `rate_limited` (429s, from
  the buckets or injected); `faults_injected` (queued and random), `random_faults` by rate name.
- `calls`: the ledger of `POST /v1/messages`. `answered`: calls that got an answer (a 200 whose
  body began), each billed its input; `completed`: those whose whole message was delivered;
  `cut`: answered but ended early (an error event, a dropped connection, the client leaving).
  `answered` = `completed` + `cut` + streams still open. Error statuses (429, 5xx, 4xx) are
  never answered and bill nothing, as with the real API.
- `tokens`: what answered calls billed: `input_tokens`, `cache_creation_input_tokens`,
  `cache_read_input_tokens` when the answer began, `output_tokens` as generated (a cut call
  bills what it sent; `output_tokens_cut` is that part); `batch_*` for Message Batches results.
- `streams`: open and peak, how streams ended (`completed`, `aborted` by the client,
  `errored`, `dropped`) and the server-side duration of completed ones.
- `batch_requests`: batch entries by result.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

STREAM_OUTCOMES = ("completed", "aborted", "errored", "dropped")
TOKEN_KINDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


class Stats:
    """Plain counters, updated from the event loop only, so no locking is needed."""

    def __init__(self) -> None:
        self.streams_open = 0
        self.reset()

    def reset(self) -> None:
        """Zero the counters; open streams are a live gauge, so they survive a reset."""
        self.started = time.time()
        self.requests: defaultdict[str, defaultdict[int, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self.streams_peak = self.streams_open
        self.streams: dict[str, int] = dict.fromkeys(STREAM_OUTCOMES, 0)
        self.tokens: dict[str, int] = dict.fromkeys(TOKEN_KINDS, 0)
        self.batch_tokens: dict[str, int] = dict.fromkeys(TOKEN_KINDS, 0)
        self.batch_requests: dict[str, int] = {"succeeded": 0, "errored": 0, "canceled": 0}
        self.rate_limited = 0
        self.calls: dict[str, int] = {"answered": 0, "completed": 0, "cut": 0}
        self.output_tokens_cut = 0
        # Server-side duration of completed streams: shows whether the simulator kept its
        # schedule under load, independently of how fast the client reads.
        self.completed_seconds_total = 0.0
        self.completed_seconds_max = 0.0

    def record_request(self, path: str, status: int) -> None:
        self.requests[path][status] += 1
        if status == 429:
            self.rate_limited += 1

    def add_usage(self, usage: dict[str, Any], *, batch: bool = False) -> None:
        target = self.batch_tokens if batch else self.tokens
        for kind in TOKEN_KINDS:
            value = usage.get(kind)
            if isinstance(value, int):
                target[kind] += value

    def answered(self, usage: dict[str, Any]) -> None:
        """A call's answer began: its input is billed."""
        self.calls["answered"] += 1
        self.add_usage({k: v for k, v in usage.items() if k != "output_tokens"})

    def ended(self, output_tokens: int, *, completed: bool) -> None:
        """An answered call ended, whole or cut short, having generated `output_tokens`."""
        self.calls["completed" if completed else "cut"] += 1
        self.tokens["output_tokens"] += output_tokens
        if not completed:
            self.output_tokens_cut += output_tokens

    def stream_opened(self) -> None:
        self.streams_open += 1
        self.streams_peak = max(self.streams_peak, self.streams_open)

    def stream_closed(self, outcome: str, seconds: float) -> None:
        self.streams_open -= 1
        self.streams[outcome] += 1
        if outcome == "completed":
            self.completed_seconds_total += seconds
            self.completed_seconds_max = max(self.completed_seconds_max, seconds)

    def snapshot(self, faults_injected: int, random_faults: dict[str, int]) -> dict[str, Any]:
        return {
            "uptime_seconds": round(time.time() - self.started, 3),
            "requests": {
                path: {str(code): n for code, n in sorted(codes.items())}
                for path, codes in sorted(self.requests.items())
            },
            "requests_total": sum(sum(codes.values()) for codes in self.requests.values()),
            "rate_limited": self.rate_limited,
            "faults_injected": faults_injected,
            "random_faults": dict(random_faults),
            "calls": dict(self.calls),
            "streams": {
                "open": self.streams_open,
                "peak_open": self.streams_peak,
                **self.streams,
                "completed_seconds_mean": round(
                    self.completed_seconds_total / max(1, self.streams["completed"]), 4
                ),
                "completed_seconds_max": round(self.completed_seconds_max, 4),
            },
            "tokens": {
                **self.tokens,
                "output_tokens_cut": self.output_tokens_cut,
                **{f"batch_{kind}": n for kind, n in self.batch_tokens.items()},
            },
            "batch_requests": dict(self.batch_requests),
        }
