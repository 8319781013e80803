"""Redis Sentinel: the settings build Sentinel clients for every connection, and a master killed
under streaming jobs is replaced by its replica with no job lost."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from shared import broker, keys
from shared.celery_app import create_celery
from shared.redis import BlockingSentinelPool, connect, connect_sync
from shared.settings import Settings, load_settings
from tests.helpers import events, submit, text_of
from tests.procs import RedisServer, wait_until
from tests.simulator_fixtures import start_simulator
from tests.stack import service_env, start_api, start_worker

MASTER_NAME = "sidecar"
# Never dialled: under Sentinel, REDIS_URL's host is ignored (its database and password are not).
UNREACHABLE_URL = "redis://unreachable.invalid:1/2"


def sentinel_settings(**extra: Any) -> Settings:
    return load_settings(redis_url="redis://:pw@ignored:1/2", redis_sentinels="127.0.0.1:26390,s2",
                         redis_master_name=MASTER_NAME, **extra)


async def test_connect_builds_a_master_client_through_the_sentinels() -> None:
    client = connect(sentinel_settings(redis_sentinel_password="sentinel-pw"), max_connections=7)
    pool = client.connection_pool
    assert isinstance(pool, BlockingSentinelPool)
    assert (pool.service_name, pool.is_master, pool.max_connections) == (MASTER_NAME, True, 7)
    assert pool.connection_kwargs["db"] == 2 and pool.connection_kwargs["password"] == "pw"
    assert "host" not in pool.connection_kwargs  # the sentinels name it
    sentinels = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]
    assert [(s["host"], s["port"]) for s in sentinels] == [("127.0.0.1", 26390), ("s2", 26379)]
    assert sentinels[0]["password"] == "sentinel-pw"
    await client.aclose()


def test_sync_client_and_broker_use_the_sentinels_too() -> None:
    settings = sentinel_settings()
    sync = connect_sync(settings, socket_timeout=2)
    assert sync.connection_pool.service_name == MASTER_NAME  # type: ignore[attr-defined]
    assert sync.connection_pool.connection_kwargs["db"] == 2
    app = create_celery(settings)
    assert app.conf.broker_url == "sentinel://:pw@127.0.0.1:26390/2;sentinel://:pw@s2:26379/2"
    assert app.conf.broker_transport_options["master_name"] == MASTER_NAME
    assert app.connection_for_write().transport_cls == "sentinel"
    assert isinstance(app.connection_for_write().transport, broker.SentinelTransport)


def test_without_sentinels_nothing_changes() -> None:
    settings = load_settings(redis_url="redis://127.0.0.1:6390/4")
    assert connect_sync(settings).connection_pool.connection_kwargs["port"] == 6390
    assert create_celery(settings).conf.broker_url == "redis://127.0.0.1:6390/4"


# --- failover under load ------------------------------------------------------------------


def sentinel_server(master_port: int) -> RedisServer:
    """A sentinel watching `master_port`, with its own writable config (Sentinel rewrites it)."""
    server = RedisServer()
    conf = Path(server.dir) / "sentinel.conf"
    conf.write_text(
        f"port {server.port}\nbind 127.0.0.1\ndir {server.dir}\n"
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n"
        f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
        f"sentinel failover-timeout {MASTER_NAME} 3000\n"
    )
    server.argv = [server.argv[0], str(conf), "--sentinel"]
    return server


@dataclass
class Replicated:
    master: RedisServer
    replica: RedisServer
    sentinels: list[RedisServer]

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def master_port(self) -> int:
        """The master's port as the first sentinel that answers sees it."""
        for server in self.sentinels:
            try:
                with redis.Redis(port=server.port, socket_timeout=1) as client:
                    return int(client.sentinel_get_master_addr_by_name(MASTER_NAME)[1])
            except redis.RedisError:
                continue
        return 0

    def ready(self) -> bool:
        """The replica in sync, and every sentinel knowing it and the two others (so a quorum
        can agree, and elect a leader, once the master dies)."""
        try:
            with redis.Redis(port=self.replica.port) as replica:
                if replica.info("replication")["master_link_status"] != "up":
                    return False
            for server in self.sentinels:
                with redis.Redis(port=server.port) as client:
                    if len(client.sentinel_sentinels(MASTER_NAME)) < 2 \
                            or not client.sentinel_slaves(MASTER_NAME):
                        return False
        except redis.RedisError:
            return False
        return True


@pytest.fixture
def replicated() -> Iterator[Replicated]:
    master = RedisServer(appendonly=True)
    replica = RedisServer(appendonly=True)
    replica.argv += ["--replicaof", "127.0.0.1", str(master.port)]
    sentinels = [sentinel_server(master.port) for _ in range(3)]
    try:
        for server in (master, replica, *sentinels):
            server.start()
        running = Replicated(master, replica, sentinels)
        wait_until(running.ready, 20, "replica in sync and sentinels acquainted")
        yield running
    finally:
        for server in (*sentinels, replica, master):
            server.stop()  # one never started only has its directory removed


def status_of(url: str, job_id: str) -> dict[str, Any] | None:
    """The job, or None while the API cannot answer (Redis failing over)."""
    try:
        response = httpx.get(f"{url}/api/jobs/{job_id}", timeout=5)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_jobs_streaming_through_a_failover_all_succeed(replicated: Replicated) -> None:
    sim = start_simulator(ttft_ms=20, tokens_per_second=40, reply_tokens=300)  # 7.5 s a stream
    env = service_env(UNREACHABLE_URL, sim.url, REDIS_SENTINELS=replicated.addresses,
                      REDIS_MASTER_NAME=MASTER_NAME, SSE_KEEPALIVE_SECONDS="1")
    worker = start_worker(env, "sentinel-worker", queues="interactive")
    api = start_api(env, "sentinel-api")
    try:
        job_ids = [submit(api.url, f"Failover question {n}", max_tokens=400) for n in range(6)]

        def all_streaming() -> bool:
            jobs = [status_of(api.url, job_id) for job_id in job_ids]
            return all(j is not None and j["status"] == "running" for j in jobs)

        wait_until(all_streaming, 20, "every job streaming")
        time.sleep(1.0)
        assert all_streaming(), "a job ended before the master was killed"
        assert replicated.master_port() == replicated.master.port
        assert replicated.master.proc is not None
        os.killpg(replicated.master.proc.pid, signal.SIGKILL)  # no shutdown, no last AOF write

        final: dict[str, dict[str, Any]] = {}

        def all_ended() -> bool:
            for job_id in job_ids:
                current = status_of(api.url, job_id)
                if current is not None and current["status"] not in {"queued", "running"}:
                    final[job_id] = current
            return len(final) == len(job_ids)

        wait_until(all_ended, 45, "every job ended after the failover")
        assert replicated.master_port() == replicated.replica.port
        assert {job_id: job["status"] for job_id, job in final.items()} == \
            dict.fromkeys(job_ids, "succeeded"), final
        for job_id, job in final.items():  # each answer whole, in the result and the event log
            assert job["usage"]["output_tokens"] == 300, job
            assert text_of(events(api.url, job_id)) == job["result"]["text"]
        with redis.Redis(port=replicated.replica.port, db=2) as promoted:
            assert promoted.info("replication")["role"] == "master"
            assert all(promoted.exists(keys.job(job_id)) for job_id in job_ids)
    finally:
        api.stop()
        worker.stop()
        sim.stop()
