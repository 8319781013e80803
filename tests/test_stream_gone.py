"""An event stream whose job record is gone (expired or deleted) ends: an `error` event, then
the connection closes — within a couple of keepalive periods, not keepalives forever."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from shared import keys
from sidecar.errors import NotFoundError
from sidecar.jobs import JobsClient
from sidecar.sse import parse_lines
from tests.helpers import submit
from tests.procs import RedisServer
from tests.stack import Proc, service_env, start_api

pytestmark = pytest.mark.integration

KEEPALIVE = 0.5


@pytest.fixture(scope="module")
def api() -> Iterator[Proc]:
    """An API with a short keepalive and no worker: every job stays queued."""
    server = RedisServer().start()
    env = service_env(server.url, "http://127.0.0.1:9", SSE_KEEPALIVE_SECONDS=str(KEEPALIVE))
    started = start_api(env, "gone-api")
    started.extra["redis_url"] = server.url
    yield started
    started.stop()
    server.stop()


def _forget(api: Proc, job_id: str) -> None:
    client = redis.Redis.from_url(api.extra["redis_url"])
    assert client.delete(keys.job(job_id), keys.events(job_id)) == 2
    client.close()


def test_the_stream_ends_with_an_error_once_the_record_is_deleted(api: Proc) -> None:
    job_id = submit(api.url)
    with httpx.stream("GET", f"{api.url}/api/jobs/{job_id}/events",
                      timeout=httpx.Timeout(10, read=10 * KEEPALIVE)) as response:
        lines = response.iter_lines()
        stream = parse_lines(lines)
        first = next(stream)
        assert (first.id, first.event) == (1, "status")
        _forget(api, job_id)
        deleted = time.monotonic()
        rest = list(stream)  # the server closes the stream: no read timeout
        ended = time.monotonic() - deleted
    assert [event.event for event in rest] == ["error"]
    assert rest[0].data["type"] == "not_found"
    assert ended < 2 * KEEPALIVE + 0.5


def test_the_client_raises_not_found_instead_of_reconnecting(api: Proc) -> None:
    job_id = submit(api.url)
    seen = []
    with JobsClient(api.url, timeout=10) as client, pytest.raises(NotFoundError) as raised:
        for event in client.events(job_id):
            seen.append(event)
            _forget(api, job_id)
    assert [event.event for event in seen] == ["status"]
    assert raised.value.error_type == "not_found"
