"""Small helpers for driving the API over HTTP in tests."""

from __future__ import annotations

import time
from typing import Any

import httpx

from sidecar.sse import Event, parse_lines


def submit(url: str, message: str = "How dry is the Canterbury plain?", **options: Any) -> str:
    # Fresh runs unless a test asks for the response cache.
    body = {"type": "chat", "input": {"message": message}, "max_tokens": 30, "cache": False,
            **options}
    response = httpx.post(url + "/api/jobs", json=body, timeout=10)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def events(url: str, job_id: str, last: int | None = None, limit: int | None = None,
           timeout: float = 60) -> list[Event]:
    """Read a job's SSE stream (from `last`), up to `limit` events or its end."""
    headers = {} if last is None else {"Last-Event-ID": str(last)}
    got: list[Event] = []
    with httpx.stream("GET", f"{url}/api/jobs/{job_id}/events", headers=headers,
                      timeout=httpx.Timeout(10, read=timeout)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in parse_lines(response.iter_lines()):
            got.append(event)
            if event.event == "done" or (limit is not None and len(got) >= limit):
                break
    return got


def job(url: str, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/api/jobs/{job_id}", timeout=10)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def wait_status(url: str, job_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = job(url, job_id)
        if current["status"] in statuses:
            return current
        time.sleep(0.05)
    raise TimeoutError(f"job {job_id} not in {statuses}: {current['status']}")


def text_of(stream: list[Event]) -> str:
    """The answer a client shows: tokens since the last reset."""
    text: list[str] = []
    for event in stream:
        if event.event == "reset":
            text.clear()
        elif event.event == "token":
            text.append(event.data["text"])
    return "".join(text)
