"""The shared limiter with real processes: two workers against a rate-limited simulator."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
import redis

from sidecar.jobs import AsyncJobsClient
from tests.helpers import events, submit
from tests.procs import RedisServer
from tests.simulator_fixtures import SimProcess, start_simulator
from tests.stack import Proc, service_env, start_api, start_worker

pytestmark = pytest.mark.integration

SIM_LIMITS = {"rpm": 60, "itpm": 100_000, "otpm": 3000}


@dataclass
class Limited:
    url: str
    sim: SimProcess
    env: dict[str, str]
    redis_url: str
    procs: list[Proc]

    def limits(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(self.url + "/api/limits").json()
        return result

    def worker(self, name: str, queues: str, **env: str) -> Proc:
        proc = start_worker({**self.env, **env}, name, queues=queues)
        self.procs.append(proc)
        return proc


@pytest.fixture(scope="module")
def limited(redis_server: RedisServer) -> Iterator[Limited]:
    sim = start_simulator(ttft_ms=20, tokens_per_second=200, **SIM_LIMITS)
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/3"
    redis.Redis.from_url(redis_url).flushdb()
    env = service_env(redis_url, sim.url, QUEUE_DEADLINE_BATCH_SECONDS="20")
    procs = [start_worker(env, "limited-a", queues="interactive,batch"),
             start_worker(env, "limited-b", queues="interactive,batch"), start_api(env)]
    stack = Limited(procs[-1].url, sim, env, redis_url, procs)
    yield stack
    for proc in stack.procs:
        proc.stop()
    sim.stop()


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _run_all(url: str, count: int, **options: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        async with AsyncJobsClient(url, timeout=60) as client:
            accepted = await asyncio.gather(*[
                client.submit_chat(f"Dry spell question {n}", **options) for n in range(count)])
            return list(await asyncio.gather(*[client.wait(a["id"]) for a in accepted]))

    return asyncio.run(run())


def test_forty_jobs_wait_for_capacity_instead_of_collecting_429s(limited: Limited) -> None:
    # 40 x 90 output tokens reserved > the 3000 OTPM bucket: a quarter must wait for refill.
    limited.sim.reset()
    finals = _run_all(limited.url, 40, max_tokens=90)
    assert all(f["status"] == "succeeded" for f in finals)
    stats = limited.sim.stats()
    calls = sum(stats["requests"]["/v1/messages"].values())
    assert stats["rate_limited"] <= 0.01 * calls
    model = limited.limits()["models"]["claude-sonnet-5-5"]
    assert model["source"] == "headers"  # nothing configured: learned from the answers
    assert model["limits"] == SIM_LIMITS
    assert model["waits"] > 0 and model["in_flight"] == 0


def test_headers_lower_a_too_high_configured_limit(limited: Limited) -> None:
    too_high = json.dumps({"haiku": {"rpm": 100_000, "itpm": 10**7, "otpm": 10**6}})
    worker = limited.worker("too-high", "batch", RATE_LIMITS=too_high)
    try:
        job_id = submit(limited.url, model="haiku", priority="batch", max_tokens=10)
        assert events(limited.url, job_id)[-1].data["status"] == "succeeded"
    finally:
        worker.stop()
    haiku = limited.limits()["models"]["claude-haiku-5-5"]
    assert haiku["limits"] == SIM_LIMITS and haiku["source"] == "headers"


def test_a_429_cools_every_worker_down(limited: Limited) -> None:
    limited.sim.reset()
    limited.sim.fault(kind="status", status=429, count=1, retry_after=2)
    first = submit(limited.url, max_tokens=10)
    time.sleep(0.3)  # the 429 has been answered and the cool-down set
    cooling = limited.limits()["models"]["claude-sonnet-5-5"]["cooldown_seconds"]
    second = submit(limited.url, max_tokens=10)
    finals = [events(limited.url, job_id)[-1].data for job_id in (first, second)]
    assert 1.0 < cooling <= 2.0
    assert [f["status"] for f in finals] == ["succeeded", "succeeded"]
    assert finals[0]["attempts"] == 2 and finals[1]["attempts"] == 1
    # The second job, on whichever worker, waited out the cool-down rather than calling.
    assert _ts(finals[1]["started_at"]) - _ts(finals[1]["created_at"]) > 1.0
    assert limited.sim.stats()["rate_limited"] == 0 or limited.sim.stats()["requests"][
        "/v1/messages"].get("429", 0) == 1


def test_a_job_that_cannot_get_capacity_fails_rate_limited(limited: Limited) -> None:
    # Opus's bucket is new to the limiter: the first job probes and learns 300 OTPM; the second
    # would need 40 s of refill, past the batch queue's 20 s deadline, so it fails at once.
    limited.sim.configure(otpm=300, reply_tokens=250)
    try:
        first = submit(limited.url, model="opus", priority="batch", max_tokens=250)
        assert events(limited.url, first)[-1].data["status"] == "succeeded"
        second = submit(limited.url, model="opus", priority="batch", max_tokens=250)
        started = time.monotonic()
        failed = events(limited.url, second)[-1].data
        assert time.monotonic() - started < 5
    finally:
        limited.sim.reset(config=True)
    assert failed["status"] == "failed"
    assert failed["error"]["type"] == "rate_limited"
    assert failed["attempts"] == 0  # never called Claude
    assert limited.sim.stats()["rate_limited"] == 0


def test_interactive_stays_fast_while_a_batch_waits(limited: Limited) -> None:
    limited.sim.reset()
    body = {"type": "chat", "input": {"message": "nightly region"}, "max_tokens": 150,
            "priority": "batch", "cache": False}
    for n in range(120):  # 18 000 output tokens reserved against a 3000 OTPM bucket
        httpx.post(limited.url + "/api/jobs", json={**body, "idempotency_key": f"b{n}"})
    time.sleep(1.0)
    waits = []
    for n in range(5):
        job_id = submit(limited.url, f"farmer question {n}", max_tokens=20)
        final = events(limited.url, job_id)[-1].data
        assert final["status"] == "succeeded"
        waits.append(_ts(final["started_at"]) - _ts(final["created_at"]))
    r = redis.Redis.from_url(limited.redis_url)
    still_waiting = r.zcard("sidecar:deferred") + r.llen("batch")
    assert still_waiting > 0  # the batch is still far from done
    assert max(waits) < 1.0, waits


def test_client_keys_have_their_own_limits(limited: Limited) -> None:
    farm_key, council_key = "f" + "0123456789abcdef" * 2, "c" + "fedcba9876543210" * 2
    api = start_api({**limited.env, "SIDECAR_AUTH": "on", "CLIENT_RPM": "3",
                     "SIDECAR_API_KEYS": f"farm-app:{farm_key},council-app:{council_key}"},
                    "keyed-api")
    limited.procs.append(api)
    body = {"type": "chat", "input": {"message": "hi"}, "max_tokens": 5, "cache": False}
    assert httpx.post(api.url + "/api/jobs", json=body).status_code == 401
    farm = {"Authorization": f"Bearer {farm_key}"}
    codes = [httpx.post(api.url + "/api/jobs", json=body, headers=farm).status_code
             for _ in range(4)]
    assert codes == [202, 202, 202, 429]
    refused = httpx.post(api.url + "/api/jobs", json=body, headers=farm)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 20
    assert refused.json()["error"]["type"] == "rate_limited"
    council = httpx.post(api.url + "/api/jobs", json=body, headers={"X-API-Key": council_key})
    assert council.status_code == 202
    clients = httpx.get(api.url + "/api/limits", headers=farm).json()["clients"]
    # A tenant sees its own buckets only, under a digest of its name.
    assert len(clients) == 1 and "farm-app" not in json.dumps(clients)


def test_limits_are_visible_in_metrics(limited: Limited) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(limited.url + "/metrics").text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    key = ("sidecar_rate_limit", (("bucket", "otpm"), ("model", "claude-sonnet-5-5")))
    assert samples[key] == SIM_LIMITS["otpm"]
    assert ("sidecar_queue_depth", (("queue", "batch"),)) in samples
    assert any(name == "sidecar_upstream_errors_total" for name, _ in samples)
