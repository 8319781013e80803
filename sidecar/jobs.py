"""`JobsClient` and `AsyncJobsClient`: the job API over HTTP — submit, get, follow a job's
events (resuming by itself with Last-Event-ID after a dropped connection), cancel, wait — and
the same `chat` / `chat_stream` as `SidecarClient`, through the queue."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from sidecar.client import StreamChunk
from sidecar.errors import JobFailed, NotFoundError, SidecarError, from_response
from sidecar.sse import Event, aparse_lines, parse_lines

RESUME_ATTEMPTS = 5
STREAM_TIMEOUT = httpx.Timeout(10.0, read=60.0)


def default_url() -> str:
    from shared.settings import get_settings

    settings = get_settings()
    return settings.sidecar_url or f"http://127.0.0.1:{settings.server_port}"


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _check(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.status_code >= 400:
        raise from_response(response.status_code, body, dict(response.headers))
    return body


def job_body(job_type: str, job_input: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"type": job_type, "input": job_input,
            **{k: v for k, v in options.items() if v is not None}}


def chat_input(message: str, system: str | None,
               history: list[dict[str, str]] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if system is not None:
        body["system"] = system
    if history:
        body["history"] = history
    return body


def answer_text(job: dict[str, Any]) -> str:
    return str((job.get("result") or {}).get("text", ""))


def as_chunk(event: Event) -> StreamChunk | None:
    """A job event as the seed's StreamChunk (status events carry no text)."""
    if event.event == "token":
        return StreamChunk(event.data["text"])
    if event.event == "reset":
        return StreamChunk("", reset=True)
    if event.event == "done":
        raise_for_job(event.data)
        return StreamChunk("", is_final=True, usage=event.data.get("usage"))
    return None


def _final(event: Event) -> dict[str, Any]:
    job: dict[str, Any] = event.data
    return job


def stream_error(data: Any) -> SidecarError:
    """The `error` event a stream ends with (its job's record is gone) as the error to raise:
    reconnecting could not bring that stream back."""
    error = data if isinstance(data, dict) else {}
    message = str(error.get("message") or "the event stream ended with an error")
    if error.get("type") == "not_found":
        return NotFoundError(message, status=404, error_type="not_found", body=data)
    return SidecarError(message, error_type=error.get("type"), body=data)


def raise_for_job(job: dict[str, Any]) -> dict[str, Any]:
    if job["status"] != "succeeded":
        error = job.get("error") or {}
        raise JobFailed(f"job {job['id']} {job['status']}: {error.get('message', '')}".strip(),
                        job=job, error_type=error.get("type"))
    return job


class Resume:
    """Where a job's event stream is up to, so a dropped connection resumes exactly there."""

    def __init__(self, job_id: str, last_event_id: int) -> None:
        self.path = f"/api/jobs/{job_id}/events"
        self.last = last_event_id
        self.failures = 0

    def headers(self) -> dict[str, str]:
        return {"Last-Event-ID": str(self.last)}

    def take(self, event: Event) -> bool:
        """Note an event to hand on; False for the server's `reconnect` (it is stopping).
        Raises for an `error` event, which ends the stream for good."""
        if event.event == "reconnect":
            return False
        if event.event == "error":
            raise stream_error(event.data)
        if event.id:  # an event without one leaves the position where it was
            self.last = event.id
        self.failures = 0
        return True

    def failed(self, exc: Exception) -> float:
        """Seconds to wait before reconnecting; gives up after RESUME_ATTEMPTS in a row."""
        self.failures += 1
        if self.failures > RESUME_ATTEMPTS:
            raise SidecarError(f"event stream lost: {exc}") from exc
        return min(2.0, 0.1 * 2**self.failures)


class JobsClient:
    """Synchronous client of the job API."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.http = httpx.Client(base_url=base_url or default_url(), headers=_headers(api_key),
                                 timeout=timeout, transport=transport)

    def __enter__(self) -> JobsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def submit(self, job_type: str = "chat", job_input: dict[str, Any] | None = None,
               **options: Any) -> dict[str, Any]:
        """Queue a job; returns `{"id", "type", "status", "links"}`."""
        result: dict[str, Any] = _check(
            self.http.post("/api/jobs", json=job_body(job_type, job_input or {}, **options)))
        return result

    def submit_chat(self, message: str, system: str | None = None,
                    history: list[dict[str, str]] | None = None, **options: Any) -> dict[str, Any]:
        """Queue a chat job; returns the accepted job (follow it with `events`)."""
        return self.submit("chat", chat_input(message, system, history), **options)

    def chat(self, message: str, system: str | None = None,
             history: list[dict[str, str]] | None = None, **options: Any) -> str:
        """The answer, as `SidecarClient.chat` gives it — through the queue, so the service's
        limiter, retries, cache and accounting apply."""
        job = self.submit_chat(message, system, history, **options)
        return answer_text(self.wait(job["id"]))

    def chat_stream(self, message: str, system: str | None = None,
                    history: list[dict[str, str]] | None = None,
                    **options: Any) -> Iterator[StreamChunk]:
        """Text chunks as they stream, then a final chunk with the usage. A chunk with
        `reset=True` means a retry began: drop the text received so far."""
        job = self.submit_chat(message, system, history, **options)
        for event in self.events(job["id"]):
            chunk = as_chunk(event)
            if chunk is not None:
                yield chunk

    def get(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = _check(self.http.get(f"/api/jobs/{job_id}"))
        return result

    def cancel(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = _check(self.http.delete(f"/api/jobs/{job_id}"))
        return result

    def events(self, job_id: str, last_event_id: int = 0) -> Iterator[Event]:
        """Every event after `last_event_id` until `done`, reconnecting where it broke off."""
        resume = Resume(job_id, last_event_id)
        while True:
            try:
                with self.http.stream("GET", resume.path, timeout=STREAM_TIMEOUT,
                                      headers=resume.headers()) as response:
                    if response.status_code >= 400:
                        response.read()
                        _check(response)
                    stream = parse_lines(response.iter_lines())
                    for event in stream:
                        if not resume.take(event):
                            break
                        if event.event == "done":
                            # The body ends right after `done`: reading to its end puts the
                            # connection back in the pool (dropped half-read otherwise).
                            with contextlib.suppress(httpx.HTTPError):
                                for _ in stream:
                                    pass
                            yield event
                            return
                        yield event
            except (httpx.TransportError, httpx.RemoteProtocolError) as exc:
                time.sleep(resume.failed(exc))

    def wait(self, job_id: str) -> dict[str, Any]:
        """The job's final JSON, once it has one (raises JobFailed unless it succeeded)."""
        for event in self.events(job_id):
            if event.event == "done":
                return raise_for_job(_final(event))
        raise SidecarError("stream ended without a done event")


class AsyncJobsClient:
    """Asynchronous client of the job API; the same methods as `JobsClient`, awaited."""

    def __init__(self, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 30.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.http = httpx.AsyncClient(base_url=base_url or default_url(),
                                      headers=_headers(api_key), timeout=timeout,
                                      transport=transport)

    async def __aenter__(self) -> AsyncJobsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def submit(self, job_type: str = "chat", job_input: dict[str, Any] | None = None,
                     **options: Any) -> dict[str, Any]:
        response = await self.http.post("/api/jobs",
                                        json=job_body(job_type, job_input or {}, **options))
        result: dict[str, Any] = _check(response)
        return result

    async def submit_chat(self, message: str, system: str | None = None,
                          history: list[dict[str, str]] | None = None,
                          **options: Any) -> dict[str, Any]:
        return await self.submit("chat", chat_input(message, system, history), **options)

    async def chat(self, message: str, system: str | None = None,
                   history: list[dict[str, str]] | None = None, **options: Any) -> str:
        job = await self.submit_chat(message, system, history, **options)
        return answer_text(await self.wait(job["id"]))

    async def chat_stream(self, message: str, system: str | None = None,
                          history: list[dict[str, str]] | None = None,
                          **options: Any) -> AsyncIterator[StreamChunk]:
        job = await self.submit_chat(message, system, history, **options)
        async for event in self.events(job["id"]):
            chunk = as_chunk(event)
            if chunk is not None:
                yield chunk

    async def get(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = _check(await self.http.get(f"/api/jobs/{job_id}"))
        return result

    async def cancel(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = _check(await self.http.delete(f"/api/jobs/{job_id}"))
        return result

    async def events(self, job_id: str, last_event_id: int = 0) -> AsyncIterator[Event]:
        resume = Resume(job_id, last_event_id)
        while True:
            try:
                async with self.http.stream("GET", resume.path, timeout=STREAM_TIMEOUT,
                                            headers=resume.headers()) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        _check(response)
                    stream = aparse_lines(response.aiter_lines())
                    async for event in stream:
                        if not resume.take(event):
                            break
                        if event.event == "done":  # read to the end, as `JobsClient.events`
                            with contextlib.suppress(httpx.HTTPError):
                                async for _ in stream:
                                    pass
                            yield event
                            return
                        yield event
            except (httpx.TransportError, httpx.RemoteProtocolError) as exc:
                await asyncio.sleep(resume.failed(exc))

    async def wait(self, job_id: str) -> dict[str, Any]:
        async for event in self.events(job_id):
            if event.event == "done":
                return raise_for_job(_final(event))
        raise SidecarError("stream ended without a done event")
