"""Every error leaves the API as `{"error": {"type", "message", "field"?}}` with the right
status — Sidecar's own errors, FastAPI's validation and routing errors, and anything
unexpected (as a 500 that leaks no internals)."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from api.headers import ALWAYS
from shared.errors import InvalidInput, SidecarError
from shared.validation import field_path

log = logging.getLogger("sidecar.api")


def error_response(status: int, body: dict[str, Any],
                   headers: dict[str, str] | None = None) -> JSONResponse:
    # With the always-on headers itself: an error from middleware never passes through theirs.
    return JSONResponse({"error": body}, status_code=status, headers={**ALWAYS, **(headers or {})})


def invalid_from(exc: ValidationError | RequestValidationError) -> InvalidInput:
    first = exc.errors()[0]
    field = field_path(first["loc"])
    return InvalidInput(f"{field}: {first['msg']}", field=field)


def install(app: FastAPI) -> None:
    @app.exception_handler(SidecarError)
    async def _sidecar(request: Request, exc: SidecarError) -> JSONResponse:
        if exc.status_code >= 500 and exc.__cause__ is not None:  # what callers are not told
            log.warning("request failed", exc_info=exc.__cause__,
                        extra={"path": request.url.path, "error_type": exc.error_type})
        headers = None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}
        return error_response(exc.status_code, exc.to_dict(), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = invalid_from(exc)
        return error_response(error.status_code, error.to_dict())

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, {"type": kind, "message": str(exc.detail)},
                              dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Errors raised in middleware land here, outside the handlers above.
        if isinstance(exc, SidecarError):
            return await _sidecar(request, exc)
        if isinstance(exc, HTTPException):
            return await _http(request, exc)
        log.exception("unhandled error", extra={"path": request.url.path})
        return error_response(500, {"type": "internal_error", "message": "internal error"})
