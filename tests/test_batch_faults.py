"""Batches under faults: a Message Batch whose creation fails (5xx, a dropped connection) or
whose submit task is lost is submitted again; one batch that cannot be collected holds up no
other; an upstream batch's records outlive Claude's day; and a batch is created whole or not at
all, however its creation is cut short.

The faults on the Message Batches API come from a small proxy between the batch worker and
the simulator, which can fail the next calls on a path or every call about one upstream batch.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import redis
from redis.asyncio import Redis

from api.auth import LOCAL_TENANT
from shared import batches, keys
from shared.batches import BatchRequest, BatchStore
from shared.jobstore import JobStore
from shared.record import as_str
from shared.settings import Settings
from tests.conftest import Stack
from tests.procs import wait_until
from tests.stack import Proc, start_beat, start_worker

CREATE_PATH = "/v1/messages/batches"
DAY = 86400


@dataclass
class FaultProxy:
    """Forwards to the simulator, except for the faults queued here: `queued` holds (method,
    path, action) consumed in order, an action being an HTTP status or 'drop' (the connection
    closed with no answer, before the simulator sees the request); every call naming an id in
    `broken` answers 500; with `break_next` set, the next batch created is added to `broken`."""

    upstream: str
    queued: list[tuple[str, str, int | str]] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)
    break_next: bool = False
    seen: list[tuple[str, str, int | str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self) -> None:
        with self.lock:
            self.queued.clear()
            self.broken.clear()
            self.break_next = False

    def fault_for(self, method: str, path: str) -> int | str | None:
        with self.lock:
            if any(upstream_id in path for upstream_id in self.broken):
                return 500
            for index, (m, p, action) in enumerate(self.queued):
                if (m, p) == (method, path):
                    del self.queued[index]
                    return action
        return None

    def created(self, body: bytes) -> None:
        with self.lock:
            if self.break_next:
                self.broken.add(json.loads(body)["id"])
                self.break_next = False

    def calls(self, method: str, path: str) -> list[int | str]:
        with self.lock:
            return [outcome for m, p, outcome in self.seen if (m, p) == (method, path)]


def _handler(proxy: FaultProxy, client: httpx.Client) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            method, path = self.command, self.path.split("?")[0]
            action = proxy.fault_for(method, path)
            if action == "drop":
                self.close_connection = True
                proxy.seen.append((method, path, "drop"))
                return
            if isinstance(action, int):
                self.answer(action, {"content-type": "application/json"}, json.dumps(
                    {"type": "error", "error": {"type": "api_error", "message": "injected"}}
                ).encode())
                proxy.seen.append((method, path, action))
                return
            headers = dict(self.headers.items())  # Host too: results_url leads back here
            reply = client.request(method, proxy.upstream + self.path, headers=headers,
                                   content=body)
            if (method, path) == ("POST", CREATE_PATH) and reply.status_code == 200:
                proxy.created(reply.content)
            proxy.seen.append((method, path, reply.status_code))
            self.answer(reply.status_code, dict(reply.headers), reply.content)

        def answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "content-encoding",
                                        "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = relay

    return Handler


@pytest.fixture(scope="module")
def proxy_server(stack: Stack) -> Iterator[FaultProxy]:
    faults = FaultProxy(stack.sim_url)
    with httpx.Client(timeout=30) as client:
        faults.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(faults, client))
        thread = threading.Thread(target=faults.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield faults
        finally:
            faults.server.shutdown()
            faults.server.server_close()


@pytest.fixture
def proxy(proxy_server: FaultProxy) -> Iterator[FaultProxy]:
    """The proxy with no fault left over from another test."""
    proxy_server.reset()
    yield proxy_server
    proxy_server.reset()


@pytest.fixture(scope="module")
def worker(stack: Stack, proxy_server: FaultProxy,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """A batch worker (and beat, polling every second) that reach Claude through the proxy."""
    env = {**stack.env, "ANTHROPIC_BASE_URL": proxy_server.url, "UPSTREAM_BATCH_POLL_SECONDS": "1"}
    batch_worker = start_worker(env, "fault-batch-worker", queues="batch", concurrency=8)
    beat = start_beat(env, tmp_path_factory.mktemp("beat"))
    try:
        yield batch_worker
    finally:  # other modules count on nothing consuming the batch queue
        beat.stop()
        batch_worker.stop()


def chat_jobs(count: int) -> list[dict[str, Any]]:
    return [{"type": "chat", "input": {"message": f"hello {n}"}, "max_tokens": 50}
            for n in range(count)]


def create(stack: Stack, count: int) -> dict[str, Any]:
    response = httpx.post(stack.url + "/api/batches", json={
        "jobs": chat_jobs(count), "mode": "anthropic_batch"}, timeout=60)
    assert response.status_code == 202, response.text
    batch: dict[str, Any] = response.json()
    return batch


def status(stack: Stack, batch_id: str) -> dict[str, Any]:
    state: dict[str, Any] = httpx.get(f"{stack.url}/api/batches/{batch_id}").json()
    return state


def wait_done(stack: Stack, batch_id: str, timeout: float = 30) -> dict[str, Any]:
    wait_until(lambda: status(stack, batch_id)["status"] != "running", timeout,
               f"batch {batch_id} finished")
    return status(stack, batch_id)


def warnings(worker: Proc, batch_id: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in worker.output().splitlines()
             if line.startswith("{")]
    return [line for line in lines
            if line.get("level") == "WARNING" and line.get("batch_id") == batch_id]


@pytest.mark.integration
def test_failed_creations_are_retried_until_one_succeeds(stack: Stack, proxy: FaultProxy,
                                                         worker: Proc) -> None:
    proxy.queued += [("POST", CREATE_PATH, 500), ("POST", CREATE_PATH, 529),
                     ("POST", CREATE_PATH, "drop")]
    before = len(proxy.calls("POST", CREATE_PATH))
    batch = create(stack, 3)
    final = wait_done(stack, batch["id"])
    assert final["status"] == "completed" and final["counts"]["succeeded"] == 3
    assert final["upstream_batch_id"].startswith("msgbatch_")
    assert proxy.calls("POST", CREATE_PATH)[before:] == [500, 529, "drop", 200]
    assert len(warnings(worker, batch["id"])) >= 3


@pytest.mark.integration
def test_a_batch_that_cannot_be_collected_holds_up_no_other(stack: Stack, proxy: FaultProxy,
                                                             worker: Proc) -> None:
    proxy.break_next = True
    stuck = create(stack, 2)
    wait_until(lambda: status(stack, stuck["id"])["upstream_batch_id"], 20,
               "stuck batch submitted")
    fine = create(stack, 2)
    assert wait_done(stack, fine["id"])["counts"]["succeeded"] == 2
    assert status(stack, stuck["id"])["status"] == "running"
    wait_until(lambda: bool(warnings(worker, stuck["id"])), 10, "a warning naming the batch")
    proxy.broken.clear()
    assert wait_done(stack, stuck["id"])["counts"]["succeeded"] == 2


@pytest.mark.integration
def test_records_outlive_the_upstream_window(stack: Stack, proxy: FaultProxy,
                                            worker: Proc) -> None:
    proxy.break_next = True  # held in progress: never collected until unbroken
    batch = create(stack, 2)
    wait_until(lambda: status(stack, batch["id"])["upstream_batch_id"], 20, "submitted")
    client = redis.Redis.from_url(stack.redis_url)
    job_ids = [as_str(j) for j in client.lrange(keys.batch_jobs(batch["id"]), 0, -1)]
    names = [keys.batch(batch["id"]), keys.batch_jobs(batch["id"]),
             *[k for j in job_ids for k in (keys.job(j), keys.events(j))]]
    # The normal job TTL is a day here: a day more for Claude, less a few minutes of slack.
    assert all(client.ttl(name) > 2 * DAY - 600 for name in names), [
        client.ttl(n) for n in names]
    proxy.broken.clear()
    wait_done(stack, batch["id"])
    assert all(0 < client.ttl(keys.job(j)) <= DAY for j in job_ids)  # finished: usual TTL


@pytest.mark.integration
async def test_a_lost_submit_task_is_submitted_by_the_poll(
        stack: Stack, worker: Proc, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    conn = Redis.from_url(stack.redis_url)
    store = BatchStore(conn, JobStore(conn, settings.job_ttl_seconds))
    request = BatchRequest(jobs=chat_jobs(2), mode="anthropic_batch")

    def crash(batch_id: str) -> None:  # the API died before the task reached the broker
        raise ConnectionError("broker gone")

    try:
        assert await batches.start(store, settings, request, "lost-send", crash,
                                   batches.Owner(LOCAL_TENANT))
        final = await asyncio.to_thread(wait_done, stack, "lost-send")
    finally:
        await conn.aclose()
    assert final["counts"]["succeeded"] == 2


# --- creation is atomic (a real redis-server, no stack) ---

@pytest.fixture
async def conn(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def planned(mode: str, count: int = 4) -> tuple[BatchRequest, list[dict[str, str]]]:
    settings = Settings(_env_file=None)
    request = BatchRequest(jobs=chat_jobs(count), mode=mode)  # type: ignore[arg-type]
    return request, batches.plan(request, settings, "b1")


@pytest.mark.parametrize(("mode", "step"), [("queue", "rpush"), ("anthropic_batch", "rpush"),
                                            ("anthropic_batch", "sadd")])
async def test_a_creation_cut_short_writes_nothing(conn: Redis, mode: str, step: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    request, records = planned(mode)
    messages = [f"message {r['id']}" for r in records] if mode == "queue" else None

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"process died at {step}")

    monkeypatch.setattr(Redis, step, crash)
    store = BatchStore(conn, JobStore(conn, 3600))
    with pytest.raises(RuntimeError):
        await store.create("b1", request, records, messages)
    monkeypatch.undo()
    assert await conn.keys("*") == []
    assert await store.create("b1", request, records, messages)  # a retry starts afresh
    assert await conn.llen(keys.batch_jobs("b1")) == len(records)
    assert await conn.exists(*[keys.job(r["id"]) for r in records]) == len(records)
    assert await conn.llen("batch") == (len(records) if messages else 0)
    assert await conn.sismember(keys.upstream_batches(), "b1") == (mode == "anthropic_batch")


async def test_concurrent_creators_make_one_batch(conn: Redis) -> None:
    request, records = planned("queue", 20)
    messages = [f"message {r['id']}" for r in records]
    store = BatchStore(conn, JobStore(conn, 3600))
    created = await asyncio.gather(*[store.create("b1", request, records, messages)
                                     for _ in range(4)])
    assert sorted(created) == [False, False, False, True]
    assert await conn.llen("batch") == 20 and await conn.llen(keys.batch_jobs("b1")) == 20
    assert not await store.create("b1", request, records, messages)  # a repeat
    assert await conn.llen("batch") == 20


async def test_a_lost_script_cache_is_loaded_before_the_transaction(conn: Redis) -> None:
    request, records = planned("anthropic_batch")
    await conn.script_flush()
    store = BatchStore(conn, JobStore(conn, 3600))
    assert await store.create("b1", request, records)
    assert await conn.exists(*[keys.job(r["id"]) for r in records]) == len(records)
