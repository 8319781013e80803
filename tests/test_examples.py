"""The examples work against a real Sidecar: `examples.backend_app` runs under uvicorn (finding
Sidecar through `SIDECAR_URL`) and each of its endpoints answers with text from jobs that exist
in Sidecar; bad input is a 422; `python -m examples.quickstart` runs to the end."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples import prompts
from examples.backend_app import create_app
from examples.schemas import DroughtReading
from sidecar.sse import parse_lines
from tests.conftest import Stack
from tests.procs import free_port, wait_until
from tests.stack import Proc, _spawn

ROOT = Path(__file__).resolve().parent.parent
integration = pytest.mark.integration


@pytest.fixture(scope="module")
def backend(stack: Stack) -> Iterator[str]:
    """The farming backend on a free port, pointed at the stack by `SIDECAR_URL` only."""
    port = free_port()
    env = {**stack.env, "SIDECAR_URL": stack.url, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "uvicorn", "examples.backend_app:app", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning"]
    proc = Proc("backend", *_spawn("backend", argv, env), url=f"http://127.0.0.1:{port}")

    def up() -> bool:
        try:
            return httpx.get(proc.url + "/openapi.json", timeout=1).status_code == 200
        except httpx.HTTPError:
            return proc.proc.poll() is not None

    wait_until(up, 60, "example backend up")
    assert proc.proc.poll() is None, proc.output()[-3000:]
    yield proc.url
    proc.stop()


def _unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:8]}]"  # a fresh job, never a cache hit


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(url, json=body, timeout=60)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _job(stack: Stack, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{stack.url}/api/jobs/{job_id}", timeout=10)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    assert job["status"] == "succeeded"
    return job


def test_prompt_carries_the_readings_and_classes_the_spi() -> None:
    reading = DroughtReading(region="Canterbury", rainfall_mm_30d=12, rainfall_normal_mm_30d=60,
                             soil_moisture_pct=18, spi_3m=-1.6)
    prompt = prompts.analysis_prompt(reading)
    assert "Canterbury" in prompt and "20% of the normal 60 mm" in prompt
    assert "Soil moisture: 18%" in prompt and "-1.6 (severely dry)" in prompt
    assert [prompts.spi_class(v) for v in (-2.5, -1.2, 0, 1.7, 2.4)] == [
        "extremely dry", "moderately dry", "near normal", "very wet", "extremely wet"]


@integration
def test_analyze_drought(backend: str, stack: Stack) -> None:
    answer = _post(backend + "/api/analyze-drought", {
        "region": "Canterbury", "rainfall_mm_30d": 12, "soil_moisture_pct": 18, "spi_3m": -1.6,
        "notes": _unique("Stock water dams low")})
    assert answer["region"] == "Canterbury" and answer["analysis"].strip()
    job = _job(stack, answer["job_id"])
    assert job["result"]["text"] == answer["analysis"]
    assert answer["cost_usd"] == job["cost_usd"] > 0


@integration
def test_chat_assistant_with_history(backend: str, stack: Stack) -> None:
    answer = _post(backend + "/api/chat-assistant", {
        "message": _unique("Should I sell some ewes now?"),
        "history": [{"role": "user", "content": "We have had no rain for six weeks."},
                    {"role": "assistant", "content": "That is hard. How is your feed?"}]})
    assert set(answer) == {"reply", "job_id"} and answer["reply"].strip()
    assert _job(stack, answer["job_id"])["result"]["text"] == answer["reply"]


@integration
def test_forecast_explanation(backend: str, stack: Stack) -> None:
    answer = _post(backend + "/api/forecast-explanation", {
        "forecast": {"rain_probability_pct": 30, "rain_mm_next_7d": 4, "max_temp_c": 31},
        "region": _unique("Hawkes Bay"), "audience": "community"})
    assert answer["audience"] == "community" and answer["explanation"].strip()
    assert _job(stack, answer["job_id"])["result"]["text"] == answer["explanation"]


@integration
def test_analyze_drought_stream(backend: str) -> None:
    body = {"region": "Otago", "spi_3m": -2.1, "notes": _unique("Creeks dry")}
    with httpx.stream("POST", backend + "/api/analyze-drought-stream", json=body,
                      timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(parse_lines(response.iter_lines()))
    texts = [e.data["text"] for e in events if e.event == "message"]
    assert len(texts) >= 2 and "".join(texts).strip()  # streamed in pieces, not in one
    assert events[-1].event == "done" and events[-1].data["usage"]["output_tokens"] > 0


@integration
def test_advanced_analysis_runs_regions_concurrently(backend: str, stack: Stack) -> None:
    regions = ["Northland", "Waikato", "Marlborough"]
    response = httpx.post(backend + "/api/advanced-analysis", timeout=60, json={
        "regions": [{"region": r, "notes": _unique("Dry")} for r in regions]})
    assert response.status_code == 200, response.text
    answers = response.json()
    assert [a["region"] for a in answers] == regions
    assert all(a["analysis"].strip() for a in answers)
    jobs = [_job(stack, a["job_id"]) for a in answers]
    assert len({j["id"] for j in jobs}) == 3

    def at(stamp: str) -> datetime:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    # All three were submitted before any finished: gathered, not one after another.
    assert max(at(j["created_at"]) for j in jobs) < min(at(j["finished_at"]) for j in jobs)


@integration
@pytest.mark.parametrize(("path", "body"), [
    ("/api/analyze-drought", {"rainfall_mm_30d": 12}),
    ("/api/analyze-drought", {"region": "   "}),
    ("/api/analyze-drought", {"region": "Otago", "soil_moisture_pct": 140}),
    ("/api/analyze-drought", {"region": "Otago", "rainfall_mm_30d": -3}),
    ("/api/analyze-drought", {"region": "Otago", "spi_3m": "very dry"}),
    ("/api/analyze-drought", {"region": "Otago", "soil_moisture": 20}),
    ("/api/analyze-drought-stream", {"region": "Otago", "ndvi": 3}),
    ("/api/chat-assistant", {"message": ""}),
    ("/api/chat-assistant", {"message": "hi", "history": [{"role": "farmer", "content": "x"}]}),
    ("/api/forecast-explanation", {"forecast": {}}),
    ("/api/forecast-explanation", {"forecast": {"rain_mm": "lots"}}),
    ("/api/forecast-explanation", {"forecast": {"rain_mm": 3}, "audience": "minister"}),
    ("/api/advanced-analysis", {"regions": []}),
    ("/api/advanced-analysis", {"regions": [{"region": "Otago", "spi_3m": 9}]}),
])
def test_nonsense_is_a_422(backend: str, path: str, body: dict[str, Any]) -> None:
    response = httpx.post(backend + path, json=body, timeout=10)
    assert response.status_code == 422, response.text


@integration
def test_a_failed_job_is_a_502(backend: str, sim_clean: Stack) -> None:
    sim_clean.sim("POST", "/_sim/faults", json={"kind": "status", "status": 400, "count": 1})
    response = httpx.post(backend + "/api/chat-assistant", timeout=60,
                          json={"message": _unique("Is this a drought?")})
    assert response.status_code == 502, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_no_sidecar_is_a_503() -> None:
    app = create_app(f"http://127.0.0.1:{free_port()}")
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://backend") as client:
        response = await client.post("/api/chat-assistant", json={"message": "hi"})
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "sidecar_unreachable"


@integration
def test_quickstart(stack: Stack) -> None:
    done = subprocess.run([sys.executable, "-m", "examples.quickstart", "--url", stack.url],
                          cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("Q: ") == 2 and "(job " in out
    answers = [line[3:] for line in out.splitlines() if line.startswith("A: ")]
    assert len(answers) == 2 and all(a.strip() for a in answers)
    assert "status succeeded" in out and "cost $0.0" in out
