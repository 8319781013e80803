"""Session fixtures: a private redis-server, the simulator and a running Sidecar, each on free
ports of loopback and stopped at the end; never the machine's own Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from shared.jobstore import JobStore
from tests.procs import RedisServer
from tests.stack import Proc, service_env, start_api, start_worker


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A clean database of its own on the session's redis-server (database 15, so flushing it
    never touches the running stack's state in database 0)."""
    import redis

    url = redis_server.url.rsplit("/", 1)[0] + "/15"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    yield url


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[JobStore]:
    """The job store on that clean database, for tests of its scripts."""
    redis = Redis.from_url(redis_url)
    yield JobStore(redis, 3600)
    await redis.aclose()


@pytest.fixture(scope="session")
def simulator() -> Iterator[Any]:
    """The Claude simulator on a free port, streaming fast enough for tests to stay quick."""
    from tests.simulator_fixtures import start_simulator

    sim = start_simulator(ttft_ms=20, tokens_per_second=100)
    yield sim
    sim.stop()


@dataclass
class Stack:
    """A running Sidecar: Redis, the simulator, one API and one worker (interactive queue)."""

    redis_url: str
    sim_url: str
    env: dict[str, str]
    api: Proc
    worker: Proc
    extra: list[Proc] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.api.url

    def sim(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, self.sim_url + path, timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="session")
def stack(redis_server: RedisServer, simulator: Any) -> Iterator[Stack]:
    env = service_env(redis_server.url, simulator.url)
    worker = start_worker(env, "session-worker", queues="interactive")
    api = start_api(env)
    running = Stack(redis_server.url, simulator.url, env, api, worker)
    yield running
    for proc in [api, worker, *running.extra]:
        proc.stop()


@pytest.fixture
def sim_clean(stack: Stack) -> Iterator[Stack]:
    """A stack whose simulator has no faults queued and fresh counters."""
    stack.sim("POST", "/_sim/reset")
    yield stack
    stack.sim("POST", "/_sim/reset")
