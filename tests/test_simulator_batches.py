"""The simulator's Message Batches, driven through the real `anthropic` SDK: lifecycle, cancel
and listing."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from tests.simulator_fixtures import HELLO, MODEL, SimProcess, wait_for

# Fixtures pytest finds here by name; `x as x` marks the imports as meant, not unused.
from tests.simulator_fixtures import reset_sim as reset_sim  # `clean`, autouse
from tests.simulator_fixtures import sdk_client as sdk_client  # `client`
from tests.simulator_fixtures import sim_process as sim_process  # `sim`

pytestmark = pytest.mark.integration


def test_batch_lifecycle(client: anthropic.Anthropic, sim: SimProcess) -> None:
    requests: list[Any] = [
        {"custom_id": "first", "params": {"model": MODEL, "max_tokens": 20, "messages": HELLO}},
        {"custom_id": "second", "params": {"model": MODEL, "max_tokens": 30, "messages": HELLO}},
        {"custom_id": "broken", "params": {"model": MODEL, "messages": HELLO}},
    ]
    batch = client.messages.batches.create(requests=requests)
    assert batch.id.startswith("msgbatch_") and batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3 and batch.results_url is None
    ended = wait_for(
        lambda: (b := client.messages.batches.retrieve(batch.id)).processing_status == "ended"
        and b
    )
    assert ended.request_counts.succeeded == 2 and ended.request_counts.errored == 1
    assert ended.ended_at is not None and ended.results_url
    results: dict[str, Any] = {
        r.custom_id: r.result for r in client.messages.batches.results(batch.id)
    }
    assert set(results) == {"first", "second", "broken"}
    assert results["first"].type == "succeeded"
    sync = client.messages.create(model=MODEL, max_tokens=20, messages=HELLO)
    assert results["first"].message.content == sync.content
    assert results["broken"].type == "errored"
    assert "max_tokens" in results["broken"].error.error.message
    assert batch.id in [b.id for b in client.messages.batches.list(limit=5)]
    spent = sum(r.message.usage.output_tokens for r in results.values() if r.type == "succeeded")
    assert sim.stats()["tokens"]["batch_output_tokens"] == spent
    deleted = client.messages.batches.delete(batch.id)
    assert deleted.type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


def test_batch_cancel(client: anthropic.Anthropic, sim: SimProcess) -> None:
    sim.configure(batch_seconds_per_request=5)
    params: Any = {"model": MODEL, "max_tokens": 10, "messages": HELLO}
    batch = client.messages.batches.create(
        requests=[{"custom_id": f"r{i}", "params": params} for i in range(4)]
    )
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at
    ended = wait_for(
        lambda: (b := client.messages.batches.retrieve(batch.id)).processing_status == "ended"
        and b
    )
    assert ended.request_counts.canceled == 4
    assert {r.result.type for r in client.messages.batches.results(batch.id)} == {"canceled"}


def test_batch_list_pagination(client: anthropic.Anthropic) -> None:
    params: Any = {"model": MODEL, "max_tokens": 5, "messages": HELLO}
    ids = [
        client.messages.batches.create(requests=[{"custom_id": "a", "params": params}]).id
        for _ in range(5)
    ]
    page = client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
    assert [b.id for b in client.messages.batches.list(limit=2)] == ids[::-1]
