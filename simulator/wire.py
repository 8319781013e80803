"""Wire-format helpers shared by every endpoint: ids, timestamps, JSON and error bodies.

The SDK under test parses these shapes strictly (pydantic models, `request-id` header,
`error.type`), so they live in one place to keep every answer consistent with the real API.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Ids need not be reproducible, only unique and shaped like the real ones; a private
# generator keeps them from disturbing any seeded randomness elsewhere.
_ID_RNG = random.Random()

STATUS_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

ERROR_TYPE_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

DEFAULT_MESSAGES: dict[str, str] = {
    "overloaded_error": "Overloaded",
    "api_error": "Internal server error",
    "rate_limit_error": "Rate limit exceeded",
    "timeout_error": "Request timed out",
}


class ApiError(Exception):
    """An error answer in Anthropic's shape; handlers raise it, the endpoint wrapper renders it."""

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or STATUS_ERROR_TYPES.get(status, "api_error")
        self.headers = dict(headers or {})


def invalid(message: str) -> ApiError:
    """Shorthand for the 400 `invalid_request_error` that validation raises everywhere."""
    return ApiError(400, message, "invalid_request_error")


def new_id(prefix: str, length: int = 22) -> str:
    """An id shaped like the API's (`msg_01` + base62), long enough to never collide."""
    return prefix + "".join(_ID_RNG.choices(_BASE62, k=length))


def new_request_id() -> str:
    return new_id("req_011C", 20)


def rfc3339(timestamp: float, *, fraction: bool = False) -> str:
    """RFC 3339 UTC with a `Z` suffix, the form both rate-limit headers and batches use."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    if fraction:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def wall_clock() -> float:
    return time.time()


def dumps(obj: Any) -> bytes:
    """Compact JSON; stream frames are built per tick, so avoid pretty-printing overhead."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON answer without Starlette's JSONResponse re-encoding detour."""
    return Response(dumps(payload), status, dict(headers or {}), "application/json")


def error_response(err: ApiError, request_id: str) -> Response:
    body = error_body(err.error_type, err.message, request_id)
    headers = {**err.headers, "request-id": request_id}
    return json_response(body, err.status, headers)
