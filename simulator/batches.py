"""Message Batches: an in-memory store whose progress is a pure function of elapsed time.

A batch "processes" one request every `seconds_per_request`; its state is computed when asked
rather than by a background task, so nothing runs between calls and tests stay deterministic.
Results are produced once, when a batch is first seen ended, by the same planner as
`/v1/messages`, so a batched request answers exactly what the synchronous call would.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.wire import dumps, invalid, new_id, rfc3339

_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_REQUESTS = 100_000
_DAY = 86_400.0
_CANCEL_GRACE = 0.25  # how long a batch shows "canceling" before it ends

# Answers one batch entry's params: (result object, usage to record or None).
Responder = Callable[[Any], tuple[dict[str, Any], dict[str, Any] | None]]


@dataclass(slots=True)
class Batch:
    id: str
    entries: list[tuple[str, Any]]
    created_wall: float
    created_mono: float
    seconds_per_request: float
    cancel_mono: float | None = None
    cancel_wall: float | None = None
    results: list[dict[str, Any]] | None = None
    results_body: bytes = b""
    counts: dict[str, int] = field(default_factory=dict)

    def processed_by(self, mono: float) -> int:
        if self.seconds_per_request <= 0:
            return len(self.entries)
        done = int((mono - self.created_mono) / self.seconds_per_request)
        return max(0, min(len(self.entries), done))

    def end_mono(self) -> float:
        natural = self.created_mono + len(self.entries) * self.seconds_per_request
        if self.cancel_mono is None:
            return natural
        return min(natural, self.cancel_mono + _CANCEL_GRACE)

    def status(self) -> str:
        if self.results is not None:
            return "ended"
        return "in_progress" if self.cancel_mono is None else "canceling"

    def wall_of(self, mono: float) -> float:
        return self.created_wall + (mono - self.created_mono)


class BatchStore:
    """All batches of this simulator; `refresh` ends any batch whose time has come."""

    def __init__(
        self,
        responder: Responder,
        on_result: Callable[[str, dict[str, Any] | None], None],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.responder = responder
        self.on_result = on_result
        self.clock = clock
        self.wall = wall
        self.batches: dict[str, Batch] = {}

    def create(self, body: Any, seconds_per_request: float) -> Batch:
        entries = parse_batch_requests(body)
        batch_id = new_id("msgbatch_01")
        batch = Batch(batch_id, entries, self.wall(), self.clock(), seconds_per_request)
        self.batches[batch.id] = batch
        return self.refresh(batch)

    def get(self, batch_id: str) -> Batch | None:
        batch = self.batches.get(batch_id)
        return None if batch is None else self.refresh(batch)

    def newest_first(self) -> list[Batch]:
        return [self.refresh(b) for b in reversed(self.batches.values())]

    def cancel(self, batch: Batch) -> Batch:
        """Stop processing: what is done stays done, the rest ends `canceled`."""
        if batch.status() == "in_progress":
            batch.cancel_mono, batch.cancel_wall = self.clock(), self.wall()
        return self.refresh(batch)

    def delete(self, batch: Batch) -> None:
        if batch.status() != "ended":
            raise invalid(
                f"Batch {batch.id} cannot be deleted while it is processing; cancel it first"
            )
        del self.batches[batch.id]

    def clear(self) -> None:
        self.batches.clear()

    def refresh_all(self) -> None:
        for batch in self.batches.values():
            self.refresh(batch)

    def refresh(self, batch: Batch) -> Batch:
        if batch.results is None and self.clock() >= batch.end_mono():
            self._finish(batch)
        return batch

    def _finish(self, batch: Batch) -> None:
        processed = len(batch.entries)
        if batch.cancel_mono is not None:
            processed = batch.processed_by(batch.cancel_mono)
        results: list[dict[str, Any]] = []
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for index, (custom_id, params) in enumerate(batch.entries):
            if index < processed:
                result, usage = self.responder(params)
            else:
                result, usage = {"type": "canceled"}, None
            counts[result["type"]] += 1
            self.on_result(result["type"], usage)
            results.append({"custom_id": custom_id, "result": result})
        batch.counts = counts
        batch.results = results
        batch.results_body = b"".join(dumps(line) + b"\n" for line in results)


def batch_view(batch: Batch, base_url: str) -> dict[str, Any]:
    """The `MessageBatch` object; counts stay in `processing` until the batch ends (as the API)."""
    ended = batch.results is not None
    counts = batch.counts if ended else {
        "processing": len(batch.entries), "succeeded": 0, "errored": 0, "canceled": 0,
        "expired": 0,
    }
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": batch.status(),
        "request_counts": counts,
        "created_at": rfc3339(batch.created_wall, fraction=True),
        "expires_at": rfc3339(batch.created_wall + _DAY, fraction=True),
        "ended_at": rfc3339(batch.wall_of(batch.end_mono()), fraction=True) if ended else None,
        "cancel_initiated_at": (
            None if batch.cancel_wall is None else rfc3339(batch.cancel_wall, fraction=True)
        ),
        "archived_at": None,
        "results_url": f"{base_url}v1/messages/batches/{batch.id}/results" if ended else None,
    }


def parse_batch_requests(body: Any) -> list[tuple[str, Any]]:
    """Check the envelope only; each entry's `params` is judged when it is processed."""
    if not isinstance(body, dict) or "requests" not in body:
        raise invalid("requests: Field required")
    requests = body["requests"]
    if not isinstance(requests, list) or not requests:
        raise invalid("requests: List should have at least 1 item")
    if len(requests) > MAX_REQUESTS:
        raise invalid(f"requests: List should have at most {MAX_REQUESTS} items")
    entries: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(requests):
        custom_id = item.get("custom_id") if isinstance(item, dict) else None
        if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
            raise invalid(f"requests.{index}.custom_id: String should match '{_CUSTOM_ID.pattern}'")
        if custom_id in seen:
            raise invalid(f"requests: custom_id '{custom_id}' is not unique")
        if not isinstance(item.get("params"), dict):
            raise invalid(f"requests.{index}.params: Field required")
        seen.add(custom_id)
        entries.append((custom_id, item["params"]))
    return entries
