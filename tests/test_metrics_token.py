"""`METRICS_TOKEN`: when set, `/metrics` answers only `Authorization: Bearer <token>` (401 JSON
otherwise); when unset, it stays open."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.procs import RedisServer
from tests.stack import Proc, service_env, start_api

pytestmark = pytest.mark.integration

TOKEN = "metrics-" + "t" * 40


@pytest.fixture(scope="module")
def guarded_api(redis_server: RedisServer, simulator: Any) -> Iterator[Proc]:
    api = start_api(service_env(redis_server.url, simulator.url, METRICS_TOKEN=TOKEN),
                    name="api-metrics-token")
    yield api
    api.stop()


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}, {"X-API-Key": TOKEN},
    {"Authorization": "Bearer"},
])
@pytest.mark.parametrize("path", ["/metrics", "/metrics?format=json"])
def test_metrics_without_the_token_is_401(guarded_api: Proc, path: str,
                                          headers: dict[str, str]) -> None:
    response = httpx.get(guarded_api.url + path, headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthorized"
    assert TOKEN not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"


def test_metrics_with_the_token(guarded_api: Proc) -> None:
    for scheme in ("Bearer", "bearer"):
        response = httpx.get(guarded_api.url + "/metrics", timeout=10,
                             headers={"Authorization": f"{scheme} {TOKEN}"})
        assert response.status_code == 200
        assert "sidecar_" in response.text and "request" in response.text
    assert httpx.get(guarded_api.url + "/health", timeout=10).status_code == 200  # others open


def test_metrics_stay_open_without_a_token(stack: Stack) -> None:
    assert "METRICS_TOKEN" not in stack.env
    response = httpx.get(stack.url + "/metrics", timeout=10)
    assert response.status_code == 200 and "request" in response.text
