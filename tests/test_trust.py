"""Trust with real processes and two tenants: every route refuses strangers (401) and hides
other owners' work (404) while its owner still gets it; browser tokens; cache and single-flight
across callers leak no id; budgets; batches charged like jobs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis as redis_lib

from api.auth import Keyring
from shared import budgets, keys
from shared.jobspec import job_fields
from shared.schemas import JobRequest
from shared.settings import load_settings
from tests.procs import RedisServer
from tests.stack import Proc, service_env, start_api, start_worker

pytestmark = pytest.mark.integration

FARM = "farm:" + "f3a9c1e7b2d4" * 3
COUNCIL = "council:" + "c7e2a9f4d1b8" * 3
TINY = "tiny:" + "a1b2c3d4e5f6" * 3
GONE = "gone:" + "9e8d7c6b5a4f" * 3


def secret(key: str) -> str:
    return key.partition(":")[2]


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def tiny_job() -> dict[str, Any]:
    return {"type": "chat", "input": {"message": "Dry?"}, "model": "haiku", "max_tokens": 8,
            "cache": False}


def worst_case(body: dict[str, Any]) -> float:
    settings = load_settings(sidecar_auth="off")
    return budgets.worst_case_usd(job_fields(JobRequest(**body), settings), settings)


@dataclass
class Keyed:
    url: str
    redis_url: str
    procs: list[Proc]

    def mint(self, key: str, subject: str, **extra: Any) -> str:
        response = httpx.post(self.url + "/api/tokens", headers=bearer(secret(key)),
                              json={"subject": subject, **extra}, timeout=10)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["tenant"] == key.partition(":")[0] and body["subject"] == subject
        return str(body["token"])

    def post(self, path: str, credential: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.url + path, headers=bearer(credential), json=body, timeout=30)


@pytest.fixture(scope="module")
def keyed(redis_server: RedisServer, simulator: Any) -> Iterator[Keyed]:
    """An API with keys (auth on, as by default) and a worker, on a database of their own."""
    url = redis_server.url.rsplit("/", 1)[0] + "/7"
    redis_lib.Redis.from_url(url).flushdb()
    budget = 1.2 * worst_case(tiny_job())  # one job fits; with its real cost, a second not
    env = service_env(url, simulator.url, SIDECAR_AUTH="on", CLIENT_RPM="600",
                      SIDECAR_API_KEYS=",".join([FARM, COUNCIL, TINY]),
                      BUDGETS=json.dumps({"tiny": {"usd_per_day": budget}}))
    worker = start_worker(env, "trust-worker", queues="interactive,batch")
    api = start_api(env, "trust-api")
    yield Keyed(api.url, url, [api, worker])
    for proc in (api, worker):
        proc.stop()


def test_the_api_fails_closed_without_keys(redis_server: RedisServer, simulator: Any) -> None:
    env = service_env(redis_server.url, simulator.url)
    del env["SIDECAR_AUTH"]
    with pytest.raises(RuntimeError) as info:
        start_api(env, "keyless-api")
    assert "SIDECAR_API_KEYS" in str(info.value) and "SIDECAR_AUTH" in str(info.value)


def _wait_done(keyed: Keyed, job_id: str, credential: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = httpx.get(f"{keyed.url}/api/jobs/{job_id}", headers=bearer(credential)).json()
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return dict(job)
        time.sleep(0.1)
    raise TimeoutError(job_id)


def _read_routes(job_id: str, batch_id: str) -> list[tuple[str, str]]:
    return [("GET", f"/api/jobs/{job_id}"), ("GET", f"/api/jobs/{job_id}/events"),
            ("GET", f"/api/batches/{batch_id}"), ("GET", f"/api/batches/{batch_id}/events"),
            ("GET", f"/api/batches/{batch_id}/report?format=csv")]


def _cancel_routes(job_id: str, batch_id: str) -> list[tuple[str, str]]:
    return [("DELETE", f"/api/jobs/{job_id}"), ("DELETE", f"/api/batches/{batch_id}")]


def _status(keyed: Keyed, method: str, path: str, headers: dict[str, str]) -> int:
    with httpx.stream(method, keyed.url + path, headers=headers, timeout=30) as response:
        return response.status_code  # streams are not read: the status is what counts


def test_every_route_refuses_strangers_and_hides_others_work(keyed: Keyed) -> None:
    alice = keyed.mint(FARM, "alice")
    job_id = keyed.post("/api/jobs", alice, tiny_job()).json()["id"]
    _wait_done(keyed, job_id, alice)
    batch = keyed.post("/api/batches", alice, {"jobs": [tiny_job()], "mode": "queue"})
    assert batch.status_code == 202, batch.text
    batch_id = batch.json()["id"]
    _wait_done(keyed, job_ids_of(keyed, batch_id)[0], alice)
    ring = Keyring(load_settings(sidecar_api_keys=",".join([FARM, GONE])))
    expired = ring.mint("farm", "alice", -60, None).token
    revoked = ring.mint("gone", "alice", 600, None).token
    forged = alice[:-4] + ("AAAA" if not alice.endswith("AAAA") else "BBBB")
    strangers = {"no key": {}, "wrong key": bearer("x" * 40), "expired token": bearer(expired),
                 "forged token": bearer(forged), "revoked tenant's token": bearer(revoked)}
    others = {"other tenant's key": bearer(secret(COUNCIL)),
              "other subject's token": bearer(keyed.mint(FARM, "bob"))}
    owners = {"owner's token": bearer(alice), "owner tenant's key": bearer(secret(FARM))}
    results: dict[tuple[str, str, str], int] = {}
    for method, path in _read_routes(job_id, batch_id):
        for who, headers in {**strangers, **others, **owners}.items():
            results[(method, path, who)] = _status(keyed, method, path, headers)
    for method, path in _cancel_routes(job_id, batch_id):
        for who, headers in {**strangers, **others, "owner's token": bearer(alice)}.items():
            results[(method, path, who)] = _status(keyed, method, path, headers)
    for path in ("/api/jobs", "/api/chat", "/api/chat/stream", "/api/batches", "/api/tokens"):
        for who, headers in strangers.items():
            results[("POST", path, who)] = httpx.post(keyed.url + path, headers=headers,
                                                      json={}, timeout=10).status_code
    for who, headers in strangers.items():
        results[("GET", "/api/usage", who)] = httpx.get(keyed.url + "/api/usage",
                                                       headers=headers).status_code
    expected = {key: 401 if key[2] in strangers else 404 if key[2] in others else
                200 if key[0] == "GET" else 202 for key in results}
    wrong = {key: (got, expected[key]) for key, got in results.items() if got != expected[key]}
    assert not wrong, wrong
    assert len(results) >= 80


def job_ids_of(keyed: Keyed, batch_id: str) -> list[str]:
    r = redis_lib.Redis.from_url(keyed.redis_url)
    return [j.decode() for j in r.lrange(keys.batch_jobs(batch_id), 0, -1)]


def test_tokens_events_by_query_and_their_limits(keyed: Keyed) -> None:
    alice = keyed.mint(FARM, "alice-q", ttl_seconds=60)
    job_id = keyed.post("/api/jobs", alice, tiny_job()).json()["id"]
    with httpx.stream("GET", f"{keyed.url}/api/jobs/{job_id}/events?access_token={alice}",
                      timeout=30) as response:
        assert response.status_code == 200
        assert "event: done" in "".join(response.iter_text())
    # A service key never travels in a URL; a token never mints; TTLs are bounded.
    query_key = httpx.get(f"{keyed.url}/api/jobs/{job_id}/events",
                          params={"access_token": secret(FARM)})
    assert query_key.status_code == 401
    assert httpx.get(f"{keyed.url}/api/jobs/{job_id}", params={"access_token": alice}
                     ).status_code == 401  # only event streams take it
    minted = keyed.post("/api/tokens", alice, {"subject": "mallory"})
    assert minted.status_code == 403 and minted.json()["error"]["type"] == "forbidden"
    too_long = keyed.post("/api/tokens", secret(FARM), {"subject": "a", "ttl_seconds": 3601})
    assert too_long.status_code == 422 and too_long.json()["error"]["field"] == "ttl_seconds"
    assert httpx.get(keyed.url + "/api/limits", headers=bearer(alice)).status_code == 403


def test_cache_and_single_flight_across_callers_leak_no_id(keyed: Keyed) -> None:
    body = {"message": f"Identical question {time.time_ns()}?", "max_tokens": 30}
    farm = keyed.post("/api/chat", secret(FARM), body).json()
    council = keyed.post("/api/chat", secret(COUNCIL), body).json()
    assert council["cached"] is False  # the cache is per tenant
    assert council["job_id"] != farm["job_id"]
    again = keyed.post("/api/chat", secret(FARM), body).json()
    assert again["cached"] is True and again["job_id"] != farm["job_id"]
    assert again["response"] == farm["response"]
    # Single flight within a tenant: two subjects, one upstream run, a job each; the
    # follower's cancel leaves the leader's job running to its end.
    alice, bob = keyed.mint(FARM, "alice-f"), keyed.mint(FARM, "bob-f")
    slow = {"type": "chat", "input": {"message": f"Long answer {time.time_ns()}"},
            "max_tokens": 200}
    lead = keyed.post("/api/jobs", alice, slow).json()
    follow = keyed.post("/api/jobs", bob, slow).json()
    assert follow["id"] != lead["id"] and lead["id"] not in json.dumps(follow)
    view = httpx.get(f"{keyed.url}/api/jobs/{follow['id']}", headers=bearer(bob)).json()
    assert lead["id"] not in json.dumps(view)
    assert httpx.get(f"{keyed.url}/api/jobs/{lead['id']}", headers=bearer(bob)).status_code == 404
    cancelled = httpx.delete(f"{keyed.url}/api/jobs/{follow['id']}", headers=bearer(bob)).json()
    assert cancelled["status"] == "cancelled"
    assert _wait_done(keyed, lead["id"], alice)["status"] == "succeeded"
    # A follower that is not cancelled ends with the leader's outcome, under its own id.
    carol = keyed.mint(FARM, "carol-f")
    again_slow = {**slow, "input": {"message": f"Another long answer {time.time_ns()}"}}
    first = keyed.post("/api/jobs", alice, again_slow).json()
    second = keyed.post("/api/jobs", carol, again_slow).json()
    with httpx.stream("GET", f"{keyed.url}/api/jobs/{second['id']}/events",
                      headers=bearer(carol), timeout=30) as response:
        text = "".join(response.iter_text())
    done = json.loads(text.split("event: done\ndata: ", 1)[1].split("\n", 1)[0])
    assert done["id"] == second["id"] and done["status"] == "succeeded"
    assert first["id"] not in text
    assert done["result"]["text"] == _wait_done(keyed, first["id"], alice)["result"]["text"]


def test_budget_refuses_the_second_job_and_usage_adds_up(keyed: Keyed) -> None:
    tiny = secret(TINY)
    first = keyed.post("/api/jobs", tiny, tiny_job())
    assert first.status_code == 202, first.text
    done = _wait_done(keyed, first.json()["id"], tiny)
    assert done["status"] == "succeeded" and done["cost_usd"] > 0
    second = keyed.post("/api/jobs", tiny, tiny_job())
    assert second.status_code == 429, second.text
    assert second.json()["error"]["type"] == "budget_exceeded"
    assert 1 <= int(second.headers["retry-after"]) <= 86_400
    assert keyed.post("/api/jobs", secret(COUNCIL), tiny_job()).status_code == 202
    usage = httpx.get(keyed.url + "/api/usage", headers=bearer(tiny)).json()
    assert usage["tenant"] == "tiny" and usage["subject"] is None
    assert usage["spent_usd"]["day"] == pytest.approx(done["cost_usd"], abs=1e-8)
    assert usage["reserved_usd"]["day"] == pytest.approx(0, abs=1e-8)
    assert usage["remaining_usd"]["day"] < usage["budget_usd"]["day"]


def test_a_subjects_budget_comes_from_its_token(keyed: Keyed) -> None:
    token = keyed.mint(COUNCIL, "frugal", budget_usd_per_day=0.0)
    refused = keyed.post("/api/jobs", token, tiny_job())
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "budget_exceeded"
    usage = httpx.get(keyed.url + "/api/usage", headers=bearer(token)).json()
    assert usage["subject"] == "frugal" and usage["budget_usd"]["day"] == 0.0


def test_a_huge_batch_is_refused_not_silently_admitted(keyed: Keyed) -> None:
    jobs = [tiny_job() for _ in range(5000)]
    refused = keyed.post("/api/batches", secret(COUNCIL), {"jobs": jobs, "mode": "queue"})
    assert refused.status_code == 429, refused.text
    assert "600" in refused.json()["error"]["message"]
    r = redis_lib.Redis.from_url(keyed.redis_url)
    assert r.zcard(keys.queued("council")) < 10  # none of the 5 000 were queued


def test_unknown_model_is_refused_without_state(keyed: Keyed) -> None:
    body = {**tiny_job(), "model": "claude-nonsense-9"}
    refused = keyed.post("/api/jobs", secret(FARM), body)
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "model"
    assert "claude-haiku-5-5" in refused.json()["error"]["message"]
    r = redis_lib.Redis.from_url(keyed.redis_url)
    assert not [k for k in r.scan_iter("*nonsense*")]
