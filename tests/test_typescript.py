"""The TypeScript client (clients/typescript): its OpenAPI snapshot is current, the API serves
its demo page at /demo, and — in headless Chromium against the real stack — the demo runs a
drought analysis (streamed summary, then the risk card) and a chat turn with no console error.

The client's own suites (typecheck, lint, vitest unit and integration) run from .ci/run; see
clients/typescript/CI.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.routes import demo
from shared.settings import load_settings
from tests.conftest import Stack
from tests.stack import Proc, start_worker

ROOT = Path(__file__).resolve().parent.parent
TS = ROOT / "clients" / "typescript"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _openapi_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ts_openapi", TS / "scripts" / "openapi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_openapi_matches_the_api() -> None:
    script = _openapi_script()
    committed = (TS / "openapi.json").read_text()
    assert committed == script.render(script.live_schema()), (
        "clients/typescript/openapi.json is stale: run `npm run gen` in clients/typescript "
        "(then `npm run typecheck` shows where the TypeScript types must change)")


@pytest.fixture
def app_client() -> Iterator[TestClient]:
    # No `with`: the lifespan (Redis) is not needed to serve files.
    # Auth off: serving /demo needs no keys (the demo page mints its own token that way).
    yield TestClient(create_app(load_settings(sidecar_auth="off")))


def test_demo_page_and_assets_are_served(app_client: TestClient) -> None:
    page = app_client.get("/demo")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<div id="root">' in page.text
    assert app_client.get("/demo/").text == page.text
    script = next((TS / "demo-dist" / "assets").glob("*.js"))
    asset = app_client.get(f"/demo/assets/{script.name}")
    assert asset.status_code == 200
    assert "javascript" in asset.headers["content-type"]
    assert "immutable" in asset.headers["cache-control"]
    assert app_client.head("/demo").status_code == 200


def test_demo_answers_404_json_for_unknown_or_escaping_paths(app_client: TestClient) -> None:
    escaping = ("/demo/..%2F..%2F..%2Fpyproject.toml", "/demo/%2e%2e/package.json")
    for path in ("/demo/nope.js", *escaping):
        response = app_client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["type"] == "not_found"


def test_demo_missing_build_is_404_json(app_client: TestClient,
                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(demo, "DIST", tmp_path / "absent")
    response = app_client.get("/demo")
    assert response.status_code == 404
    assert "npm run demo:build" in response.json()["error"]["message"]


def _browser_tools_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (.ci/run installs nodejs and npm)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium is not installed at {CHROMIUM} (.ci/run installs chromium)")
    if not (TS / "node_modules" / "playwright-core").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=TS, check=True, timeout=600)
    return node


@pytest.fixture
def both_queues(sim_clean: Stack) -> Iterator[Stack]:
    """The session stack plus a worker for the batch queue too."""
    worker: Proc = start_worker(sim_clean.env, "ts-e2e", queues="interactive,batch")
    yield sim_clean
    worker.stop()


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_demo_in_headless_chromium(both_queues: Stack) -> None:
    node = _browser_tools_or_skip()
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "demo.png"
    screenshot.unlink(missing_ok=True)
    run = subprocess.run(
        [node, "e2e/demo.mjs", "--url", both_queues.url, "--screenshot", str(screenshot)],
        cwd=TS, capture_output=True, text=True, timeout=180,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )
    lines = run.stdout.strip().splitlines()
    assert lines, f"no output from e2e/demo.mjs (exit {run.returncode}):\n{run.stderr[-3000:]}"
    result = json.loads(lines[-1])
    assert result["consoleErrors"] == [], result
    assert result["streamedBeforeCard"], result
    assert result["riskLevel"] in {"none", "low", "moderate", "high", "severe", "extreme"}
    assert result["cardHasConfidence"] and result["chatReply"], result
    assert result["otherOrigins"] == [], result
    assert run.returncode == 0, run.stderr[-3000:]
    assert screenshot.stat().st_size > 10_000
