"""What Claude's failures mean: their error type, the wait a 429 asked for, and whether another
attempt is worth making. One definition for the workers' retries and `SidecarClient`'s."""

from __future__ import annotations

import anthropic
import httpx2

# Error types worth another attempt even when they arrive inside a 200 stream.
RETRYABLE_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})

# What a call to Claude can raise: the SDK's errors, and the HTTP library's own when a stream is
# cut after its headers arrived (the SDK does not wrap those).
UPSTREAM_ERRORS = (anthropic.APIError, httpx2.TransportError)


def error_type(exc: BaseException) -> str:
    """Anthropic's error type (`overloaded_error`, …) or a close name for transport failures."""
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body
        inner = body.get("error", body) if isinstance(body, dict) else None
        if isinstance(inner, dict) and isinstance(inner.get("type"), str):
            return str(inner["type"])
        return exc.type or f"http_{exc.status_code}"
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return "timeout_error"
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return "connection_error"
    return type(exc).__name__


def message(exc: BaseException) -> str:
    """Claude's own words for the failure, when it gave some."""
    body = getattr(exc, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(inner, dict) and isinstance(inner.get("message"), str):
        return str(inner["message"])
    return str(exc)


def retry_after(exc: BaseException) -> float | None:
    """Seconds the upstream asked us to wait, when it said so in a form we can read."""
    if not isinstance(exc, anthropic.APIStatusError):
        return None
    value = exc.response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def is_retryable(exc: BaseException, max_retry_after: float | None = None) -> bool:
    """Connection drops, 5xx/529, overloads inside a stream and a 429 that says when to come
    back retry; a 4xx is the caller's mistake, and a 429 without retry-after is a spend limit
    (as is one asking for longer than `max_retry_after`)."""
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return True
    if not isinstance(exc, anthropic.APIStatusError):
        return False
    if exc.status_code == 429:
        after = retry_after(exc)
        return after is not None and (max_retry_after is None or after <= max_retry_after)
    if exc.status_code >= 500 or exc.status_code in (408, 409):
        return True
    return exc.status_code < 400 and error_type(exc) in RETRYABLE_TYPES
