"""Every key that can grow has a TTL or a documented bound (`shared.keys.LASTING`): after jobs of
every kind have run on the session's stack (cached, followed, cancelled, failed, a batch), the
keys left without a TTL are only the documented ones."""

from __future__ import annotations

import fnmatch
import uuid

import httpx
import redis

from shared import keys
from tests.conftest import Stack
from tests.helpers import submit, wait_status


def lasting_keys(url: str) -> set[str]:
    client = redis.Redis.from_url(url)
    try:
        found = set()
        for raw in client.scan_iter(count=1000):
            if client.ttl(raw) == -1:
                found.add(raw.decode())
        return found
    finally:
        client.close()


def test_only_documented_keys_live_without_ttl(sim_clean: Stack) -> None:
    url = sim_clean.url
    nonce = uuid.uuid4().hex
    done = [submit(url, f"plain {nonce}"), submit(url, f"cached {nonce}", cache=True),
            submit(url, f"{nonce} idempotent", idempotency_key=nonce)]
    follower = httpx.post(f"{url}/api/jobs", timeout=10, json={  # follows, or hits the cache
        "type": "chat", "input": {"message": f"cached {nonce}"}, "max_tokens": 30})
    assert follower.status_code in (200, 202), follower.text
    done.append(follower.json()["id"])
    sim_clean.sim("POST", "/_sim/faults", json={"kind": "status", "status": 400})
    failed = submit(url, f"refused {nonce}")
    queued = submit(url, f"cancel me {nonce}", priority="batch")  # no batch worker here
    assert httpx.delete(f"{url}/api/jobs/{queued}", timeout=10).status_code in (200, 202)
    batch = httpx.post(f"{url}/api/batches", timeout=10, json={
        "jobs": [{"type": "chat", "input": {"message": f"b{i} {nonce}"}, "max_tokens": 20}
                 for i in range(3)]})
    assert batch.status_code in (201, 202), batch.text
    for job_id in done:
        wait_status(url, job_id, {"succeeded"})
    wait_status(url, failed, {"failed"})
    unbounded = {key for key in lasting_keys(sim_clean.redis_url)
                 if not any(fnmatch.fnmatchcase(key, pattern) for pattern in keys.LASTING)}
    assert unbounded == set(), f"keys without a TTL or a documented bound: {sorted(unbounded)}"
