"""The submit script against a real redis-server: a job is recorded and queued together or not
at all, an idempotent repeat finds the job, and identical cacheable requests find the answer or
the job in flight without queueing anything."""

from __future__ import annotations

import json

import pytest

from shared import keys
from shared.jobstore import JobStore
from shared.taskwire import run_job_message


def fields(job_id: str, queue: str = "interactive") -> dict[str, str]:
    return {"id": job_id, "type": "chat", "status": "queued", "priority": queue,
            "model": "m", "created_at": "2026-11-26T00:00:00.000Z"}


async def queued_ids(store: JobStore, queue: str) -> list[str]:
    return [json.loads(m)["headers"]["argsrepr"] for m in
            await store.redis.lrange(keys.celery_queue(queue), 0, -1)]


async def test_records_and_queues_in_one_step(store: JobStore) -> None:
    assert await store.submit(fields("a", "batch"), run_job_message("a", "batch")) == \
        ("created", None)
    assert (await store.get("a") or {})["status"] == "queued"
    assert await queued_ids(store, "batch") == ["['a']"]
    assert await queued_ids(store, "interactive") == []
    events = await store.redis.lrange(keys.events("a"), 0, -1)
    assert [e.decode().split("\n")[1] for e in events] == ["event: status"]


async def test_an_existing_job_is_returned_and_not_queued_again(store: JobStore) -> None:
    await store.submit(fields("a"), run_job_message("a", "interactive"))
    kind, record = await store.submit(fields("a"), run_job_message("a", "interactive"))
    assert kind == "exists" and record["id"] == "a" and record["status"] == "queued"
    assert await queued_ids(store, "interactive") == ["['a']"]


async def test_identical_requests_follow_the_leader_then_hit_the_cache(store: JobStore) -> None:
    assert (await store.submit(fields("lead"), run_job_message("lead", "interactive"),
                               "d1"))[0] == "created"
    assert await store.submit(fields("next"), run_job_message("next", "interactive"), "d1") == \
        ("follow", "lead")
    assert await store.get("next") is None
    await store.redis.set(keys.response_cache("d1"), json.dumps({"job_id": "lead"}))
    kind, answer = await store.submit(fields("late"), run_job_message("late", "interactive"),
                                      "d1")
    assert kind == "hit" and json.loads(answer)["job_id"] == "lead"
    assert await queued_ids(store, "interactive") == ["['lead']"]


async def test_a_script_error_leaves_nothing_behind(store: JobStore) -> None:
    """An odd number of field values makes HSET fail: the job must not be queued either."""
    broken = {**fields("x"), "extra": "1"}
    message = run_job_message("x", "interactive")
    flat = [item for pair in broken.items() for item in pair][:-1]
    with pytest.raises(Exception, match=r"(?i)wrong number"):
        await store._submit([*store._keys("x"), "", "", keys.celery_queue("interactive"), "", ""],
                            [3600, "{}", "x", 600, message, 0, 0, 0, 0, *flat])
    assert await store.get("x") is None
    assert await queued_ids(store, "interactive") == []


async def test_many_jobs_are_recorded_and_queued_together(store: JobStore) -> None:
    records = [fields(f"b{i}", "batch") for i in range(5)]
    await store.redis.script_flush()  # as after a Redis restart: the scripts load again
    await store.create_many(records, [run_job_message(r["id"], "batch") for r in records])
    assert sorted(await queued_ids(store, "batch")) == sorted(f"['b{i}']" for i in range(5))
    assert [(await store.get(f"b{i}") or {}).get("status") for i in range(5)] == ["queued"] * 5
    # Again (a retried request): nothing is recorded or queued twice.
    await store.create_many(records, [run_job_message(r["id"], "batch") for r in records])
    assert len(await queued_ids(store, "batch")) == 5
