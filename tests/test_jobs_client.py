"""`sidecar.jobs.JobsClient`: the seed's chat interface, through the queue."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from sidecar.client import StreamChunk
from sidecar.errors import JobFailed, NotFoundError, SidecarError, ValidationError
from sidecar.jobs import AsyncJobsClient, JobsClient
from tests.conftest import Stack

pytestmark = pytest.mark.integration


def test_chat_and_stream_agree(stack: Stack) -> None:
    question = f"Will the bore run dry? {uuid.uuid4().hex}"
    with JobsClient(stack.url) as client:
        text = client.chat(question, system="Be brief.", max_tokens=25, cache=False)
        chunks = list(client.chat_stream(question, system="Be brief.", max_tokens=25,
                                         cache=False))
    assert text
    assert all(isinstance(c, StreamChunk) for c in chunks)
    assert chunks[-1].is_final and chunks[-1].usage and chunks[-1].usage["output_tokens"] > 0
    assert "".join(c.content for c in chunks) == text  # the simulator is deterministic


def test_async_chat_and_stream(stack: Stack) -> None:
    async def run() -> tuple[str, list[StreamChunk]]:
        async with AsyncJobsClient(stack.url) as client:
            text = await client.chat("Async drought?", history=[
                {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
                max_tokens=15)
            chunks = [c async for c in client.chat_stream("Async drought?", max_tokens=15)]
            return text, chunks

    text, chunks = asyncio.run(run())
    assert text and chunks[-1].is_final


def test_typed_errors(stack: Stack) -> None:
    with JobsClient(stack.url) as client:
        with pytest.raises(ValidationError) as invalid:
            client.chat("x", max_tokens=10**7)
        assert invalid.value.field == "max_tokens" and isinstance(invalid.value, SidecarError)
        with pytest.raises(NotFoundError):
            client.get("no-such-job")
        job = client.submit_chat("cancel me", max_tokens=800, cache=False)
        client.cancel(job["id"])
        with pytest.raises(JobFailed) as failed:
            client.wait(job["id"])
        assert failed.value.job["status"] == "cancelled"


def test_events_resume_after_a_dropped_connection(stack: Stack) -> None:
    """A transport that drops the first stream mid-way: the client resumes with Last-Event-ID
    and yields every event exactly once."""
    drops = {"left": 1}
    real = httpx.HTTPTransport()

    class Flaky(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = real.handle_request(request)
            if request.url.path.endswith("/events") and drops["left"]:
                drops["left"] -= 1
                return httpx.Response(200, headers=response.headers,
                                      stream=_cut_after(response, 3))
            return response

    with JobsClient(stack.url, transport=Flaky()) as client:
        job = client.submit_chat("resume me", max_tokens=60, cache=False)
        events = list(client.events(job["id"]))
    assert drops["left"] == 0
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert events[-1].event == "done"


class _cut_after(httpx.SyncByteStream):
    """Yields the first `frames` SSE frames of a response, then fails like a dropped socket."""

    def __init__(self, response: httpx.Response, frames: int) -> None:
        self.response, self.frames = response, frames

    def __iter__(self):  # type: ignore[no-untyped-def]
        seen = 0
        for chunk in self.response.iter_raw():
            for frame in chunk.split(b"\n\n"):
                if frame:
                    yield frame + b"\n\n"
                    seen += 1
                if seen >= self.frames:
                    self.response.close()
                    raise httpx.RemoteProtocolError("peer closed connection")


def test_a_followed_stream_leaves_its_connection_for_the_next_job(stack: Stack) -> None:
    """Reading a job's events to `done` ends the response cleanly, so the next submission
    goes over the same connection instead of a new one."""
    transport = httpx.HTTPTransport()
    with JobsClient(stack.url, transport=transport) as client:
        for round_ in range(3):
            client.chat(f"Soil moisture, round {round_} {uuid.uuid4().hex}", max_tokens=8,
                        cache=False)
        # httpcore's pool (no public accessor): one connection carried all six requests.
        connections = transport._pool.connections
    assert len(connections) == 1
    assert "Request Count: 6" in repr(connections[0])


def test_async_stream_leaves_its_connection_too(stack: Stack) -> None:
    async def run() -> list[object]:
        transport = httpx.AsyncHTTPTransport()
        async with AsyncJobsClient(stack.url, transport=transport) as client:
            for round_ in range(2):
                await client.chat(f"Async soil, round {round_} {uuid.uuid4().hex}",
                                  max_tokens=8, cache=False)
            return list(transport._pool.connections)

    connections = asyncio.run(run())
    assert len(connections) == 1
    assert "Request Count: 4" in repr(connections[0])
