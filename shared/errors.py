"""The small tree of errors Sidecar raises; each knows its HTTP status and JSON error type.

The API maps any `SidecarError` to `{"error": {"type", "message", "field"?}}` in one handler, so
routes raise these and never build error responses themselves.
"""

from __future__ import annotations

from typing import Any


class SidecarError(Exception):
    """Base of every error Sidecar reports to a caller."""

    status_code = 500
    error_type = "internal_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class InvalidInput(SidecarError):
    """A body that parses but holds a value Sidecar cannot accept."""

    status_code = 422
    error_type = "invalid_request"


class MalformedBody(SidecarError):
    """A body that is not a JSON object."""

    status_code = 400
    error_type = "malformed_body"


class PayloadTooLarge(SidecarError):
    status_code = 413
    error_type = "payload_too_large"


class UnsupportedMediaType(SidecarError):
    """A body not sent as JSON (`Content-Type: application/json`)."""

    status_code = 415
    error_type = "unsupported_media_type"


class Unauthorized(SidecarError):
    status_code = 401
    error_type = "unauthorized"


class Forbidden(SidecarError):
    """A caller who is known but may not do this (a browser token minting tokens)."""

    status_code = 403
    error_type = "forbidden"


class JobNotFound(SidecarError):
    status_code = 404
    error_type = "not_found"


class RateLimited(SidecarError):
    """Too many requests; `retry_after` seconds tells the caller when to come back."""

    status_code = 429
    error_type = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BudgetExceeded(RateLimited):
    """The job's worst-case cost does not fit what is left of a budget until its window rolls."""

    error_type = "budget_exceeded"


class QueueFull(RateLimited):
    """The tenant has as many jobs queued as it may."""

    error_type = "queue_full"


class ServiceUnavailable(SidecarError):
    status_code = 503
    error_type = "unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamError(SidecarError):
    """Claude answered with an error that retries did not cure."""

    status_code = 502
    error_type = "upstream_error"
