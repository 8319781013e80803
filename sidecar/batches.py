"""Batch commands of the `sidecar` CLI: submit a JSONL file of job bodies, follow its progress
with a rich progress bar, print the drought report."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from sidecar.errors import SidecarError, ValidationError, from_response
from sidecar.jobs import default_url


def _check(response: httpx.Response) -> Any:
    body = response.json() if response.headers.get("content-type", "").startswith(
        "application/json") else response.text
    if response.status_code >= 400:
        raise from_response(response.status_code, body, dict(response.headers))
    return body


def read_jobs(path: Path) -> list[dict[str, Any]]:
    """One job body per line, as for POST /api/jobs; blank lines are skipped."""
    jobs = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            jobs.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{path}:{number}: not JSON ({exc.msg})") from None
    if not jobs:
        raise ValidationError(f"{path} holds no jobs")
    return jobs


class BatchClient:
    def __init__(self, url: str | None, api_key: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=url or default_url(), headers=headers, timeout=120)

    def create(self, jobs: list[dict[str, Any]], mode: str, name: str | None) -> dict[str, Any]:
        body = {"jobs": jobs, "mode": mode, **({"name": name} if name else {})}
        result: dict[str, Any] = _check(self.http.post("/api/batches", json=body))
        return result

    def get(self, batch_id: str) -> dict[str, Any]:
        result: dict[str, Any] = _check(self.http.get(f"/api/batches/{batch_id}"))
        return result

    def report(self, batch_id: str, fmt: str) -> str:
        response = self.http.get(f"/api/batches/{batch_id}/report", params={"format": fmt})
        body = _check(response)
        return body if isinstance(body, str) else json.dumps(body, indent=2)


def follow(client: BatchClient, batch: dict[str, Any], console: Console,
           every: float = 1.0) -> dict[str, Any]:
    """Poll until the batch ends, drawing done, failed, cost and ETA."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total} done"),
               TextColumn("[red]{task.fields[failed]} failed"),
               TextColumn("${task.fields[cost]:.4f}"), TextColumn("ETA {task.fields[eta]}"),
               TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(batch["name"], total=batch["total"], failed=0, cost=0.0,
                                 eta="?")
        while True:
            counts = batch["counts"]
            done = counts["succeeded"] + counts["failed"] + counts["cancelled"]
            eta = batch.get("eta_seconds")
            progress.update(task, completed=done, failed=counts["failed"],
                            cost=batch["cost_usd"], eta="?" if eta is None else f"{eta:.0f}s")
            if batch["status"] != "running":
                return batch
            time.sleep(every)
            batch = client.get(batch["id"])


__all__ = ["BatchClient", "SidecarError", "follow", "read_jobs"]
