"""What Claude's failures mean: their error type, the wait a 429 asked for, and whether another
attempt is worth making. One definition for the workers' retries and `SidecarClient`'s."""

from __future__ import annotations

import re

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


# What a caller reads about Claude's failures: a fixed summary per error type. Claude's own words
# (which may quote the request, name Sidecar's account or carry a proxy's internals) stay in the
# worker's log.
SUMMARIES = {
    "invalid_request_error": "Claude refused the request as invalid",
    "authentication_error": "Claude refused Sidecar's credentials",
    "permission_error": "Sidecar's credentials may not use this model or feature",
    "not_found_error": "Claude does not know the requested model or resource",
    "request_too_large": "the request is larger than Claude accepts",
    "rate_limit_error": "Claude's rate limit held through every retry",
    "api_error": "Claude had an internal error",
    "overloaded_error": "Claude was overloaded through every retry",
    "timeout_error": "the call to Claude timed out through every retry",
    "connection_error": "the connection to Claude failed through every retry",
}
_SAFE_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def caller_error(kind: str, status: int | None = None) -> dict[str, str]:
    """A job's error for a failure of Claude's, in words safe to show any caller: the error
    type (when it is a plain identifier), the HTTP status and a fixed summary."""
    kind = kind if _SAFE_TYPE.fullmatch(kind) else "upstream_error"
    summary = SUMMARIES.get(kind, "Claude answered with an error")
    if status is not None and status >= 400:
        summary = f"{summary} (HTTP {status})"
    return {"type": kind, "message": summary}


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


def should_retry(exc: BaseException) -> bool | None:
    """Claude's own verdict on another attempt (`x-should-retry: true|false`), when it gave one;
    the SDK obeys it before any rule of its own, and so do we."""
    if not isinstance(exc, anthropic.APIStatusError):
        return None
    return {"true": True, "false": False}.get(exc.response.headers.get("x-should-retry", ""))


def is_retryable(exc: BaseException, max_retry_after: float | None = None) -> bool:
    """Claude's `x-should-retry` first, as the SDK reads it: `false` is final whatever the
    status, `true` retries (a 429 without retry-after too, on our backoff). Without it:
    connection drops, 5xx/529, overloads inside a stream and a 429 that says when to come back
    retry; a 4xx is the caller's mistake, and a 429 without retry-after is a spend limit. A
    429 asking for longer than `max_retry_after` is the caller's to wait out, never ours."""
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return True
    if not isinstance(exc, anthropic.APIStatusError):
        return False
    after = retry_after(exc)
    if exc.status_code == 429 and after is not None and max_retry_after is not None \
            and after > max_retry_after:
        return False
    verdict = should_retry(exc)
    if verdict is not None:
        return verdict
    if exc.status_code == 429:
        return after is not None
    if exc.status_code >= 500 or exc.status_code in (408, 409):
        return True
    return exc.status_code < 400 and error_type(exc) in RETRYABLE_TYPES
