"""Errors the client library raises, from the API's JSON error body or from Claude."""

from __future__ import annotations

from typing import Any


class SidecarError(Exception):
    """Anything that went wrong talking to Sidecar or Claude."""

    def __init__(self, message: str, *, status: int | None = None,
                 error_type: str | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.body = body


class RateLimitError(SidecarError):
    """Limits persisted past the retries; `retry_after` says when to try again (seconds)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ValidationError(SidecarError):
    """The request was refused as invalid; `field` names the culprit."""

    def __init__(self, message: str, *, field: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.field = field


class NotFoundError(SidecarError):
    """No such job or batch (or it expired)."""


class JobFailed(SidecarError):
    """The job ended failed or cancelled; `job` is its final JSON."""

    def __init__(self, message: str, *, job: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.job = job


def from_response(status: int, body: Any, headers: dict[str, str]) -> SidecarError:
    """The typed error for an API error answer."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    message = str(error.get("message") or f"HTTP {status}")
    kwargs: dict[str, Any] = {"status": status, "error_type": error.get("type"), "body": body}
    if status == 429:
        after = headers.get("retry-after")
        return RateLimitError(message, retry_after=float(after) if after else None, **kwargs)
    if status in (400, 413, 422):
        return ValidationError(message, field=error.get("field"), **kwargs)
    if status == 404:
        return NotFoundError(message, **kwargs)
    return SidecarError(message, **kwargs)
