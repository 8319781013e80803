"""Batches end to end: queue mode and Anthropic Message Batch mode to completion, reports in
three formats, cancel mid-batch, the nightly tick run twice, and the CLI on a JSONL file."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.procs import wait_until
from tests.stack import start_beat, start_worker

pytestmark = pytest.mark.integration
RISKS = {"none", "low", "moderate", "high", "severe", "extreme"}


def region(n: int) -> dict[str, Any]:
    return {"region": f"Region {n:03d}", "indicators": {
        "spi_3m": round(-2.5 + (n % 10) * 0.4, 1), "soil_moisture_pct": 10 + (n * 7) % 80,
        "reservoir_pct": 20 + (n * 13) % 70}}


def drought_jobs(count: int) -> list[dict[str, Any]]:
    return [{"type": "drought_analysis", "input": region(n), "max_tokens": 1200}
            for n in range(count)]


@pytest.fixture(scope="module")
def regions_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nightly") / "regions.jsonl"
    path.write_text("\n".join(json.dumps(region(n)) for n in range(5)))
    return path


@pytest.fixture(scope="module")
def batch_stack(stack: Stack, regions_file: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {**stack.env, "UPSTREAM_BATCH_POLL_SECONDS": "1", "NIGHTLY_REGIONS": str(regions_file),
           "NIGHTLY_MODE": "queue"}
    worker = start_worker(env, "batch-worker", queues="batch", concurrency=100)
    beat = start_beat(env, tmp_path_factory.mktemp("beat"))
    try:
        yield stack
    finally:  # other modules count on nothing consuming the batch queue
        beat.stop()
        worker.stop()


def create(stack: Stack, jobs: list[dict[str, Any]], mode: str = "queue") -> dict[str, Any]:
    response = httpx.post(stack.url + "/api/batches", json={"name": f"test {mode}", "jobs": jobs,
                                                            "mode": mode}, timeout=60)
    assert response.status_code == 202, response.text
    batch: dict[str, Any] = response.json()
    return batch


def wait_done(stack: Stack, batch_id: str, timeout: float = 90) -> dict[str, Any]:
    state: dict[str, Any] = {}

    def done() -> bool:
        state.update(httpx.get(f"{stack.url}/api/batches/{batch_id}").json())
        return bool(state["status"] != "running")

    wait_until(done, timeout, f"batch {batch_id} finished")
    return state


def check_reports(stack: Stack, batch_id: str, count: int) -> None:
    base = f"{stack.url}/api/batches/{batch_id}/report"
    rows = httpx.get(base, params={"format": "json"}).json()
    assert len(rows) == count
    assert all(r["risk_level"] in RISKS and 0 <= r["confidence"] <= 1 for r in rows)
    order = ["extreme", "severe", "high", "moderate", "low", "none"]
    ranks = [order.index(r["risk_level"]) for r in rows]
    assert ranks == sorted(ranks)
    md = httpx.get(base, params={"format": "md"}).text
    assert md.startswith("# Drought report") and all(r["region"] in md for r in rows)
    table = list(csv.DictReader(io.StringIO(httpx.get(base, params={"format": "csv"}).text)))
    assert len(table) == count and {"region", "risk_level"} <= set(table[0])


@pytest.mark.parametrize("mode", ["queue", "anthropic_batch"])
def test_fifty_job_batch_runs_to_a_report(batch_stack: Stack, mode: str) -> None:
    batch = create(batch_stack, drought_jobs(50), mode)
    assert batch["total"] == 50 and batch["mode"] == mode
    assert batch["links"]["report"] == f"/api/batches/{batch['id']}/report"
    final = wait_done(batch_stack, batch["id"])
    assert final["status"] == "completed"
    assert final["counts"]["succeeded"] == 50 and final["cost_usd"] > 0
    check_reports(batch_stack, batch["id"], 50)
    if mode == "anthropic_batch":
        assert final["upstream_batch_id"].startswith("msgbatch_")
        job_id = httpx.get(f"{batch_stack.url}/api/batches/{batch['id']}/report").json()
        stats = batch_stack.sim("GET", "/_sim/stats")
        assert stats["batch_requests"]["succeeded"] >= 50 and job_id


def test_batch_mode_costs_half(batch_stack: Stack) -> None:
    jobs = drought_jobs(4)
    queued = wait_done(batch_stack, create(batch_stack, jobs, "queue")["id"])
    upstream = wait_done(batch_stack, create(batch_stack, jobs, "anthropic_batch")["id"])
    # Same requests; the Message Batch pays half (prompt caching aside, which queue mode gets).
    assert upstream["cost_usd"] < queued["cost_usd"]


def test_progress_stream_ends_with_done(batch_stack: Stack) -> None:
    batch = create(batch_stack, drought_jobs(6))
    with httpx.stream("GET", f"{batch_stack.url}/api/batches/{batch['id']}/events",
                      timeout=60) as response:
        lines = [line for line in response.iter_lines() if line.startswith("event:")]
    assert lines[-1] == "event: done" and lines[0] in ("event: progress", "event: done")


def test_cancel_mid_batch(batch_stack: Stack) -> None:
    jobs = [{"type": "chat", "input": {"message": f"long {n}"}, "max_tokens": 1500}
            for n in range(30)]
    batch = create(batch_stack, jobs)
    time.sleep(1.0)
    response = httpx.delete(f"{batch_stack.url}/api/batches/{batch['id']}")
    assert response.status_code == 202
    final = wait_done(batch_stack, batch["id"], 30)
    assert final["status"] == "cancelled"
    assert final["counts"]["cancelled"] > 0
    assert sum(final["counts"].values()) == 30


def test_bad_job_in_a_batch_names_it(batch_stack: Stack) -> None:
    jobs = drought_jobs(5)
    jobs[3] = {"type": "drought_analysis", "input": {"indicators": {"spi_3m": -1}}}
    response = httpx.post(batch_stack.url + "/api/batches", json={"jobs": jobs})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "jobs.3.input.region"
    too_many = httpx.post(batch_stack.url + "/api/batches",
                          json={"jobs": [{"type": "chat", "input": {"message": "x"}}] * 10_001})
    assert too_many.status_code == 422 and too_many.json()["error"]["field"] == "jobs"


def test_nightly_tick_twice_makes_one_batch(batch_stack: Stack) -> None:
    from celery import Celery

    from shared.celery_app import NIGHTLY_BATCH

    sender = Celery(broker=batch_stack.redis_url)
    results = []
    for _ in range(2):  # a doubled beat tick, or a redelivery
        sender.send_task(NIGHTLY_BATCH, kwargs={"night": "2026-11-26"}, queue="batch")
    batch_id = "nightly-2026-11-26"
    wait_until(lambda: httpx.get(f"{batch_stack.url}/api/batches/{batch_id}").status_code == 200,
               30, "nightly batch created")
    final = wait_done(batch_stack, batch_id)
    results.append(final)
    assert final["total"] == 5 and final["name"] == "Nightly drought report 2026-11-26"
    import redis

    client = redis.Redis.from_url(batch_stack.redis_url)
    assert len(list(client.scan_iter("sidecar:{batch:nightly-*}:batch"))) == 1


def test_cli_batch_and_report(batch_stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "regions.jsonl"
    path.write_text("\n".join(json.dumps(job) for job in drought_jobs(8)) + "\n")
    sidecar = str(Path(sys.executable).with_name("sidecar"))
    run = subprocess.run([sidecar, "batch", str(path), "--url", batch_stack.url, "--wait",
                          "--name", "cli test"], capture_output=True, text=True, timeout=120,
                         env={**batch_stack.env, "COLUMNS": "120"})
    assert run.returncode == 0, run.stderr
    batch_id = run.stdout.strip().splitlines()[-1]
    assert "8/8 done" in run.stderr and "completed" in run.stderr
    report = subprocess.run([sidecar, "report", batch_id, "--format", "md", "--url",
                             batch_stack.url], capture_output=True, text=True, timeout=60)
    assert report.returncode == 0 and report.stdout.startswith("# Drought report: cli test")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "chat"}\n')
    failed = subprocess.run([sidecar, "batch", str(bad), "--url", batch_stack.url],
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2 and "input" in failed.stderr
