"""The wrapper every API route goes through: auth, error rendering, common headers, stats.

Whatever a handler does, the client must see the API's envelope: a `request-id` header, the
`anthropic-ratelimit-*` headers (on errors and streams too, as headers precede any body) and
errors as `{"type": "error", ...}`. Doing it here keeps handlers to their actual job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from simulator.config import SimConfig
from simulator.state import SimState
from simulator.wire import ApiError, error_response, invalid, new_request_id

log = logging.getLogger("simulator")

Handler = Callable[[Request, str], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def api_endpoint(state: SimState, label: str, handler: Handler, *, auth: bool = True) -> Endpoint:
    """Wrap `handler(request, request_id)`; `label` names the route in stats."""

    async def endpoint(request: Request) -> Response:
        request_id = new_request_id()
        try:
            if auth:
                authenticate(request, state.config)
            response = await handler(request, request_id)
        except ApiError as err:
            response = error_response(err, request_id)
        headers = response.headers
        headers["request-id"] = request_id
        if auth:
            for name, value in state.limiter.headers().items():
                headers.setdefault(name, value)
        state.stats.record_request(label, response.status_code)
        return response

    return endpoint


def authenticate(request: Request, config: SimConfig) -> None:
    """Any non-empty key passes unless one was configured; Bearer tokens count as keys."""
    key = request.headers.get("x-api-key", "")
    if not key:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    if not key:
        raise ApiError(401, "x-api-key header is required", "authentication_error")
    if config.api_key is not None and key != config.api_key:
        raise ApiError(401, "invalid x-api-key", "authentication_error")


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise invalid("Request body is empty; expected a JSON object")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"Request body is not valid JSON: {exc}") from None
