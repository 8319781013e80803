"""What a delivery used stays billed when its worker dies: the scripts against a real
redis-server, with one worker's delivery cut off and another's claim taking the job over."""

from __future__ import annotations

import asyncio
import json

from shared.jobstore import JobStore
from shared.taskwire import run_job_message

LEASE = 0.05  # short enough to lapse within the test


async def queued(store: JobStore, job_id: str) -> None:
    fields = {"id": job_id, "type": "chat", "status": "queued", "priority": "interactive",
              "model": "m", "created_at": "2026-11-26T00:00:00.000Z", "attempts": "0"}
    assert (await store.submit(fields, run_job_message(job_id, "interactive")))[0] == "created"


async def die_and_take_over(store: JobStore, job_id: str) -> dict[str, int]:
    """The first worker's lease lapses; a second worker claims the job; what it carries."""
    await asyncio.sleep(LEASE * 2)
    assert await store.requeue_if_expired(job_id)
    taken = await store.claim(job_id, "w2:b", 20, 5)
    assert taken.outcome == "claimed" and taken.attempt == 2
    return dict(json.loads(taken.record.get("carried_usage") or "{}"))


async def test_a_call_cut_off_mid_stream_is_carried(store: JobStore) -> None:
    await queued(store, "j1")
    assert (await store.claim("j1", "w1:a", LEASE, 5)).outcome == "claimed"
    await store.note_usage("j1", "w1:a", {"input_tokens": 120, "cache_read_input_tokens": 40})
    await store.append_token("j1", "w1:a", "x" * 30, 1, pieces=8)
    await store.append_token("j1", "w1:a", "y" * 11, 2, pieces=3)
    carried = await die_and_take_over(store, "j1")
    assert carried == {"input_tokens": 120, "cache_read_input_tokens": 40,
                       "output_tokens": 11}  # one token for each of the 11 deltas streamed


async def test_deltas_without_text_are_counted_without_a_frame(store: JobStore) -> None:
    """A tool call's fields around the streamed one: counted for the bill, never shown."""
    await queued(store, "j5")
    assert (await store.claim("j5", "w1:a", LEASE, 5)).outcome == "claimed"
    before = len(await store.read_events("j5"))
    assert await store.append_token("j5", "w1:a", "", 1, pieces=7) == before
    assert await store.append_token("j5", "w1:a", "", 1, pieces=7) == before  # a resend
    assert len(await store.read_events("j5")) == before
    await store.append_token("j5", "w1:a", "Dry", 2, pieces=1)
    assert (await die_and_take_over(store, "j5"))["output_tokens"] == 8


async def test_settled_attempts_count_as_reported_not_as_text(store: JobStore) -> None:
    await queued(store, "j2")
    assert (await store.claim("j2", "w1:a", LEASE, 5)).outcome == "claimed"
    await store.append_token("j2", "w1:a", "z" * 400, 1)
    # The attempt failed and was settled; the worker dies while it waits to retry.
    await store.note_usage("j2", "w1:a", {"input_tokens": 50, "output_tokens": 90},
                           settled=True)
    assert await die_and_take_over(store, "j2") == {"input_tokens": 50, "output_tokens": 90}


async def test_a_finished_delivery_leaves_nothing_to_carry(store: JobStore) -> None:
    await queued(store, "j3")
    assert (await store.claim("j3", "w1:a", 20, 5)).outcome == "claimed"
    await store.note_usage("j3", "w1:a", {"input_tokens": 7})
    assert await store.finish("j3", "w1:a", {"status": "succeeded"}) is not None
    assert "delivery_usage" not in (await store.get("j3") or {})


async def test_only_the_owner_notes_usage(store: JobStore) -> None:
    await queued(store, "j4")
    assert (await store.claim("j4", "w1:a", 20, 5)).outcome == "claimed"
    await store.note_usage("j4", "someone-else", {"input_tokens": 999})
    assert "delivery_usage" not in (await store.get("j4") or {})
