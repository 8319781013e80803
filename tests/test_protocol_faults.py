"""The job protocol on a bad day, against a real redis-server: lease renewal outliving a Redis
restart, a lease index no worker can empty behind another's back, cancellation freeing the
single-flight key, requeues that put record and message in one step, a second delivery in one
process, and Redis's clock for every time-scored set."""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from redis.asyncio import Redis

from shared import events, keys
from shared.jobstore import JobStore
from shared.record import Outcome, Refusal, Renewal, as_str
from shared.taskwire import run_job_message
from tests.procs import RedisServer
from workers.runtime import Run, Runtime


def fields(job_id: str, queue: str = "interactive", **extra: str) -> dict[str, str]:
    return {"id": job_id, "type": "chat", "status": "queued", "priority": queue,
            "model": "m", "created_at": "2026-11-26T00:00:00.000Z", **extra}


async def queued(store: JobStore, queue: str = "interactive") -> list[list[str]]:
    """The job ids of the messages on a queue, as a worker would read them."""
    return [json.loads(json.loads(m)["headers"]["argsrepr"].replace("'", '"'))
            for m in await store.redis.lrange(keys.celery_queue(queue), 0, -1)]


async def redis_now(redis: Redis) -> float:
    seconds, micros = await redis.time()
    return seconds + micros / 1e6


def shell(store: JobStore, lease: float, name: str = "host:1") -> Runtime:
    """A runtime's housekeeping without its thread, metrics server or Claude client: the loops
    under test only use the store, the settings and the runs."""
    runtime = Runtime.__new__(Runtime)
    runtime.settings = SimpleNamespace(job_lease_seconds=lease)  # type: ignore[assignment]
    runtime.name = name
    runtime.runs = set()
    runtime.redis = store.redis
    runtime.ctx = SimpleNamespace(store=store, cancel_requested=set(),  # type: ignore[assignment]
                                  handing_back=set())
    return runtime


async def idle_task() -> asyncio.Task[str]:
    async def forever() -> str:
        await asyncio.sleep(3600)
        return "done"

    return asyncio.create_task(forever())


async def test_lease_renewal_outlives_a_redis_restart(caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer(appendonly=True).start()
    redis = Redis.from_url(server.url)
    try:
        store = JobStore(redis, 3600)
        await store.submit(fields("long"), run_job_message("long", "interactive"))
        assert (await store.claim("long", "host:1:a", 1.0, 5)).outcome == Outcome.CLAIMED
        runtime = shell(store, lease=1.0)
        task = await idle_task()
        runtime.runs.add(Run("long", "host:1:a", task))
        caplog.set_level(logging.WARNING, logger="sidecar.worker")
        loop = asyncio.create_task(runtime._renew_leases())
        await asyncio.sleep(0.4)
        server.stop(keep_data=True)
        await asyncio.sleep(0.8)  # at least two renewal ticks meet a closed port
        server.start()
        await asyncio.sleep(1.5)  # past the lease: only a living renewal loop keeps it
        record = await store.get("long") or {}
        assert not loop.done(), "the renewal loop died"
        assert record["owner"] == "host:1:a"
        assert float(record["lease_until"]) > await redis_now(redis)
        assert await store.requeue_if_expired("long") is False
        assert "lease renewal failed; retrying" in caplog.text
        assert "lease renewal recovered" in caplog.text
        loop.cancel()
        task.cancel()
    finally:
        await redis.aclose()
        server.stop()


async def test_a_slow_reaper_keeps_the_new_owners_lease_indexed(store: JobStore) -> None:
    await store.submit(fields("j"), run_job_message("j", "interactive"))
    assert (await store.claim("j", "w1:a", 0.05, 5)).outcome == Outcome.CLAIMED
    await asyncio.sleep(0.1)
    assert await store.due(keys.leases()) == ["j"]  # what both reapers read
    assert await store.requeue_if_expired("j") is True  # the fast reaper
    assert (await store.claim("j", "w2:b", 30, 5)).outcome == Outcome.CLAIMED
    assert await store.requeue_if_expired("j") is False  # the slow one, late
    score = await store.redis.zscore(keys.leases(), "j")
    assert score is not None and score > await redis_now(store.redis) + 20


async def test_renewal_puts_back_a_missing_lease_entry(store: JobStore) -> None:
    await store.submit(fields("j"), run_job_message("j", "interactive"))
    await store.claim("j", "w1:a", 30, 5)
    await store.redis.zrem(keys.leases(), "j")
    assert await store.renew("j", "w1:a", 30) == Renewal.RENEWED
    assert await store.redis.zscore(keys.leases(), "j") is not None
    assert await store.renew("j", "w9:z", 30) == Renewal.LOST


async def test_ending_a_job_drops_its_lease_entry(store: JobStore) -> None:
    await store.submit(fields("j"), run_job_message("j", "interactive"))
    await store.claim("j", "w1:a", 30, 5)
    assert await store.finish("j", "w1:a", {"status": "succeeded"}) is not None
    assert await store.redis.zscore(keys.leases(), "j") is None
    assert await store.renew("j", "w1:a", 30) == Renewal.IDLE


async def test_cancelling_a_queued_leader_frees_its_flight(store: JobStore) -> None:
    await store.submit(fields("lead", cache_key="d1"), run_job_message("lead", "interactive"),
                       "d1")
    assert await store.redis.get(keys.flight("d1")) == b"lead"
    assert await store.cancel("lead") == "queued"
    assert await store.redis.get(keys.flight("d1")) is None
    kind, _ = await store.submit(fields("next", cache_key="d1"),
                                 run_job_message("next", "interactive"), "d1")
    assert kind == "created"  # leads anew, instead of following a cancelled job


async def test_cancel_leaves_another_leaders_flight_alone(store: JobStore) -> None:
    await store.submit(fields("old", cache_key="d1"), run_job_message("old", "interactive"),
                       "d1")
    await store.redis.set(keys.flight("d1"), "new")  # the old flight lapsed; a new leader took it
    await store.cancel("old")
    assert await store.redis.get(keys.flight("d1")) == b"new"


async def test_finishing_a_leader_caches_its_answer_and_frees_the_flight(
        store: JobStore) -> None:
    await store.submit(fields("lead", cache_key="d1"), run_job_message("lead", "interactive"),
                       "d1")
    await store.claim("lead", "w1:a", 30, 5)
    answer = {"text": "hi", "model": "m", "usage": {}, "cost_usd": 0.1, "job_id": "lead"}
    assert await store.finish("lead", "w1:a", {"status": "succeeded"}, answer, 60) is not None
    assert await store.redis.get(keys.flight("d1")) is None
    cached = await store.redis.get(keys.response_cache("d1"))
    assert cached is not None and json.loads(cached)["text"] == "hi"


async def test_requeue_puts_record_and_message_in_one_step(store: JobStore) -> None:
    await store.submit(fields("j", "batch"), run_job_message("j", "batch"))
    await store.redis.delete(keys.celery_queue("batch"))  # the first message was delivered
    await store.claim("j", "w1:a", 0.05, 5)
    await asyncio.sleep(0.1)
    assert await store.requeue_if_expired("j") is True
    assert (await store.get("j") or {})["status"] == "queued"
    assert await queued(store, "batch") == [["j"]]
    assert await store.redis.zscore(keys.leases(), "j") is None


async def test_hand_back_puts_record_and_message_in_one_step(store: JobStore) -> None:
    await store.submit(fields("j"), run_job_message("j", "interactive"))
    await store.redis.delete(keys.celery_queue("interactive"))
    await store.claim("j", "w1:a", 30, 5)
    assert await store.release("j", "w1:a", "interactive") is True
    assert (await store.get("j") or {})["status"] == "queued"
    assert await queued(store, "interactive") == [["j"]]
    assert await store.release("j", "w1:a", "interactive") is False  # no longer its owner
    assert await queued(store, "interactive") == [["j"]]


async def test_a_deferred_job_is_sent_once_when_due(store: JobStore) -> None:
    await store.submit(fields("j", "batch"), run_job_message("j", "batch"))
    await store.redis.delete(keys.celery_queue("batch"))
    await store.defer("j", 0.05)
    assert await store.due(keys.deferred()) == []
    await asyncio.sleep(0.1)
    assert await store.due(keys.deferred()) == ["j"]
    sent = await asyncio.gather(*(store.send_again("j", "batch", deferred=True)
                                  for _ in range(3)))
    assert sorted(sent) == [False, False, True]
    assert await queued(store, "batch") == [["j"]]


async def test_time_scored_sets_follow_redis_clock(store: JobStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A host whose clock runs ahead reaps nothing early and heartbeats in Redis's time."""
    import time

    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)
    await store.submit(fields("j"), run_job_message("j", "interactive"))
    await store.claim("j", "w1:a", 5, 5)
    assert await store.due(keys.leases()) == []
    runtime = shell(store, lease=5)
    assert await runtime.reap_once() == []
    await store.heartbeat("w1", 60)
    score = await store.redis.zscore(keys.workers(), "w1")
    assert score is not None and abs(score - await redis_now(store.redis)) < 5


async def test_a_second_delivery_does_not_hide_the_first(store: JobStore) -> None:
    await store.submit(fields("j"), run_job_message("j", "interactive"))
    await store.claim("j", "host:1:first", 30, 5)
    runtime = shell(store, lease=30)
    first, second = await idle_task(), await idle_task()
    runtime.runs |= {Run("j", "host:1:first", first), Run("j", "host:1:second", second)}
    await runtime.renew_once()
    await asyncio.sleep(0)
    assert second.cancelled() and not first.done()  # the duplicate stops, the real run goes on
    runtime.runs = {run for run in runtime.runs if run.task is first}
    await store.cancel("j")  # flags the running job
    await runtime.renew_once()
    await asyncio.sleep(0)
    assert first.cancelled() and "j" in runtime.ctx.cancel_requested


async def test_the_reaper_survives_redis_errors(caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer().start()
    redis = Redis.from_url(server.url, socket_connect_timeout=0.2)
    try:
        runtime = shell(JobStore(redis, 3600), lease=0.4)
        caplog.set_level(logging.WARNING, logger="sidecar.worker")
        loop = asyncio.create_task(runtime._reap())
        server.stop(keep_data=True)
        await asyncio.sleep(0.5)
        server.start()
        await asyncio.sleep(0.6)
        assert not loop.done()
        assert "reaper failed; retrying" in caplog.text and "reaper recovered" in caplog.text
        loop.cancel()
    finally:
        await redis.aclose()
        server.stop()


async def test_a_log_that_lost_its_tail_never_reuses_an_id(store: JobStore) -> None:
    """After Redis comes back from an `everysec` AOF without the log's last frames, the next
    append fills the ids clients may have seen, resets, and sends the attempt's whole text."""
    await store.submit(fields("j"), run_job_message("j", "interactive"))
    await store.claim("j", "w1:a", 30, 5)
    acked = 0
    for seq, text in enumerate(["Dry ", "spell ", "ahead"], 1):
        acked = await store.append_token("j", "w1:a", text, seq, acked)
    seen = [bytes(f) for f in await store.read_events("j")]
    await store.redis.ltrim(keys.events("j"), 0, 2)  # the last two frames are lost
    assert await store.append_token("j", "w1:a", ", then rain", 4, acked) == Refusal.LOG_LOST
    new_id = await store.append_token("j", "w1:a", ", then rain", 4, acked,
                                      whole="Dry spell ahead, then rain")
    assert new_id > acked
    log = [bytes(f) for f in await store.read_events("j")]
    assert [events.frame_id(f) for f in log] == list(range(1, len(log) + 1))
    assert log[:3] == seen[:3]
    after = [events.parse_frame(f) for f in log[acked:]]
    assert [(f.event, f.data) for f in after] == [
        ("reset", {"reason": "log_repaired"}), ("token", {"text": "Dry spell ahead, then rain"})]
    # Appending goes on normally from there.
    assert await store.append_token("j", "w1:a", "!", 5, new_id) == new_id + 1


async def test_lua_and_python_write_the_same_frame(store: JobStore) -> None:
    """One definition of a frame: what the Lua `append` stores is what `events.frame` builds."""
    await store.submit(fields("j"), run_job_message("j", "interactive"))
    await store.claim("j", "w1:a", 30, 5)
    await store.append_token("j", "w1:a", "Kia ora — \"rain\"\n", 1)
    stored = [bytes(f) for f in await store.read_events("j")]
    assert stored == [events.frame(1, "status", {"status": "queued"}),
                      events.frame(2, "status", {"status": "running"}),
                      events.frame(3, "token", {"text": "Kia ora — \"rain\"\n"})]
    assert [events.parse_frame(f).id for f in stored] == [1, 2, 3]


async def test_a_job_whose_claim_redis_forgot_is_sent_again(store: JobStore) -> None:
    """Its record went back to `queued` under the worker (the claim was lost with Redis's last
    second): the worker that finds it lost sends it again rather than leave it messageless."""
    from workers.calls import Job
    from workers.runner import _send_again_if_queued

    await store.submit(fields("j"), run_job_message("j", "interactive"))
    await store.redis.delete(keys.celery_queue("interactive"))  # delivered
    await store.claim("j", "w1:a", 30, 5)
    await store.redis.hset(keys.job("j"), "status", "queued")  # the claim, forgotten
    await store.redis.hdel(keys.job("j"), "owner")
    ctx: Any = SimpleNamespace(store=store)
    await _send_again_if_queued(ctx, Job("j", "w1:a", {}, {}, None))  # type: ignore[arg-type]
    assert await queued(store) == [["j"]]


async def test_abandoning_a_gone_leader_frees_only_its_own_flight(store: JobStore) -> None:
    from shared.cache import ResponseCache

    cache = ResponseCache(store.redis, 60)
    await store.redis.set(keys.flight("d1"), "new-leader")
    await cache.abandon("d1", "gone-leader")
    assert await store.redis.get(keys.flight("d1")) == b"new-leader"
    await cache.abandon("d1", "new-leader")
    assert await store.redis.get(keys.flight("d1")) is None


def unacked_entry(job_id: str, queue: str = "interactive") -> str:
    """A RUN_JOB message as kombu keeps it while a worker holds it unacknowledged."""
    return json.dumps([json.loads(run_job_message(job_id, queue)), "", queue])


async def take(store: JobStore, tag: str, entry: str, age: float) -> None:
    """What kombu does when a worker takes a message: into the unacked hash and its index."""
    import time

    await store.redis.hset(keys.celery_unacked(), tag, entry)
    await store.redis.zadd(keys.celery_unacked_index(), {tag: time.time() - age})


async def test_a_message_whose_worker_died_before_claiming_is_sent_again(
        store: JobStore) -> None:
    for job_id in ("unheld", "held", "running", "deferred", "young"):
        await store.submit(fields(job_id), run_job_message(job_id, "interactive"))
    await store.redis.delete(keys.celery_queue("interactive"))  # all taken by workers
    await store.hold("held", "w1:a", 30)  # a live worker waits for capacity with it
    await store.claim("running", "w1:b", 30, 5)
    await store.defer("deferred", 60)
    for job_id in ("unheld", "held", "running", "deferred", "gone"):
        await take(store, f"tag-{job_id}", unacked_entry(job_id), age=100)
    await take(store, "tag-young", unacked_entry("young"), age=1)
    other = json.dumps([{"headers": {"task": "sidecar.poll_upstream_batches"}}, "", "batch"])
    await take(store, "tag-other", other, age=100)

    assert await store.resend_unacked(grace=40) == ["unheld"]
    assert await queued(store) == [["unheld"]]
    left = {as_str(t) for t in await store.redis.hkeys(keys.celery_unacked())}
    assert left == {"tag-held", "tag-running", "tag-deferred", "tag-young", "tag-other"}
    assert await store.resend_unacked(grace=40) == []  # once only


async def test_a_hold_lapses_with_its_worker(store: JobStore) -> None:
    await store.submit(fields("j"), run_job_message("j", "interactive"))
    await store.redis.delete(keys.celery_queue("interactive"))
    await store.hold("j", "w1:a", 0.1)
    await take(store, "tag-j", unacked_entry("j"), age=100)
    assert await store.resend_unacked(grace=40) == []
    assert await store.renew("j", "w1:a", 0.1) == Renewal.IDLE  # a live waiter renews its hold
    await asyncio.sleep(0.05)
    assert await store.resend_unacked(grace=40) == []
    await asyncio.sleep(0.15)  # no renewal: the worker died
    assert await store.resend_unacked(grace=40) == ["j"]
    record = await store.get("j") or {}
    assert "held_by" not in record
