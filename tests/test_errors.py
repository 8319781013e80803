"""Errors raised outside the routes — by the router, or by a middleware (outside FastAPI's own
exception handling) — still leave as the JSON error body with `nosniff`."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from api import errors
from api.headers import SecurityHeaders
from shared.errors import RateLimited, Unauthorized


class Raising:
    """A middleware that fails the way the path says."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if path == "/unauthorized":
            raise Unauthorized("no key")
        if path == "/limited":
            raise RateLimited("slow down", retry_after=2.2)
        if path == "/bug":
            raise RuntimeError("secret internals at /srv/app.py:12")
        await self.app(scope, receive, send)


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(Raising)
    app.add_middleware(SecurityHeaders)
    errors.install(app)
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(("method", "path", "status", "kind"), [
    ("GET", "/unauthorized", 401, "unauthorized"), ("GET", "/limited", 429, "rate_limited"),
    ("GET", "/bug", 500, "internal_error"), ("GET", "/nowhere", 404, "not_found"),
    ("POST", "/ok", 405, "method_not_allowed"),
])
def test_errors_outside_routes_are_json(client: TestClient, method: str, path: str,
                                        status: int, kind: str) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]
    assert response.json()["error"]["type"] == kind
    assert "secret" not in response.text


def test_retry_after_survives_a_middleware_error(client: TestClient) -> None:
    assert client.get("/limited").headers["retry-after"] == "3"


def test_a_normal_answer_says_nosniff_once(client: TestClient) -> None:
    response = client.get("/ok")
    assert response.json() == {"ok": "yes"}
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]
