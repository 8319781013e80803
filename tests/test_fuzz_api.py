"""A property-based fuzz of the running API from its own OpenAPI (schemathesis): for every
operation, requests that fit the schema and requests that break it — with ids that exist and
ids that do not. None may get a 5xx, and every answer must match what the schema documents
(errors included)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.procs import RedisServer, wait_until
from tests.simulator_fixtures import start_simulator
from tests.stack import service_env, start_api, start_worker

pytestmark = pytest.mark.integration

EXAMPLES = 60  # per operation, mode and id: ~1 600 requests, about half a minute on two cores
CHECKS = [not_a_server_error, response_schema_conformance]
READ_TIMEOUT = 20  # seconds: an event stream that hangs fails the run instead of stalling it
CHAT = {"type": "chat", "input": {"message": "fuzz"}, "max_tokens": 5}


@dataclass
class Target:
    url: str
    ids: dict[str, str]  # path parameter → an id that exists (a finished job, a finished batch)


@dataclass
class Tally:
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _finished(url: str) -> bool:
    return httpx.get(url, timeout=10).json()["status"] not in ("queued", "running")


@pytest.fixture(scope="module")
def target(redis_server: RedisServer) -> Iterator[Target]:
    """An API, a worker and a simulator fast enough that a fuzzed chat answers at once, on a
    database of their own (so the session stack's queues never see the fuzz's jobs)."""
    sim = start_simulator(ttft_ms=0, tokens_per_second=100_000)
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/1"
    # Keepalives rarer than the read timeout, so a stream that hangs fails rather than stalls.
    env = service_env(redis_url, sim.url, SSE_KEEPALIVE_SECONDS="60")
    procs = []
    try:
        procs.append(start_worker(env, "fuzz-worker"))
        api = start_api(env, name="fuzz-api")
        procs.append(api)
        job = httpx.post(api.url + "/api/jobs", json=CHAT, timeout=10).json()["id"]
        batch = httpx.post(api.url + "/api/batches", timeout=10,
                           json={"name": "fuzz", "jobs": [CHAT, CHAT]}).json()["id"]
        wait_until(lambda: _finished(f"{api.url}/api/jobs/{job}"), 30, "fuzz job done")
        wait_until(lambda: _finished(f"{api.url}/api/batches/{batch}"), 30, "fuzz batch done")
        yield Target(api.url, {"job_id": job, "batch_id": batch})
    finally:
        for proc in procs:
            proc.stop()
        sim.stop()
        client = redis.Redis.from_url(redis_url)
        client.flushdb()
        client.close()


def fuzz(operation: Any, mode: GenerationMode, ids: dict[str, str], tally: Tally) -> None:
    """`EXAMPLES` generated requests to one operation; raises on the first that fails a check."""

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=ids or None))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        tally.cases[operation.label] += 1
        response = case.call_and_validate(checks=CHECKS, timeout=READ_TIMEOUT)
        tally.statuses[response.status_code] += 1

    run()


def id_choices(operation: Any, known: dict[str, str]) -> list[dict[str, str]]:
    """Generated ids (almost surely unknown), and, for a route taking one, a real one."""
    names = {p.name for p in operation.path_parameters}
    real = {name: known[name] for name in names if name in known}
    return [{}, real] if real else [{}]


def test_fuzz_the_openapi(target: Target, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(target.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    tally = Tally()
    for operation in operations:
        for ids in id_choices(operation, target.ids):
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    fuzz(operation, mode, ids, tally)
                except Unsatisfiable:
                    pass  # nothing here can be made invalid (no parameters, or free strings)
                except Exception as exc:  # every operation is fuzzed; all failures reported
                    tally.failures.append(f"{operation.label} ({mode.value}, {ids}): {exc}")
    with capsys.disabled():
        print(f"\nfuzz cases run: {sum(tally.cases.values())} over {len(tally.cases)} "
              f"operations in {time.monotonic() - started:.0f}s, {len(tally.failures)} failing; "
              f"statuses {dict(sorted(tally.statuses.items()))}")
    assert not tally.failures, "\n\n".join(tally.failures)
    assert httpx.get(target.url + "/health", timeout=10).status_code == 200
