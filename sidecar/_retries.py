"""Which of Claude's failures `SidecarClient` tries again, how long it waits, and the
`SidecarError` a caller sees when it gives up.

The client builds its SDK clients with `max_retries=0` so that retries happen in one layer
only: here. (`workers/claude.py` holds the same rules for the workers; `sidecar/` may not import
`workers/`, hence this small twin.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
import httpx2
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from sidecar.errors import SidecarError, from_response

logger = logging.getLogger("sidecar.client")

# Error types worth another attempt even when they arrive inside a 200 stream.
RETRYABLE_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})
# A 429 asking for a longer wait than this is handed to the caller instead of slept through.
MAX_RETRY_AFTER = 60.0
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 8.0

# What a call to Claude can raise: the SDK's errors, and the HTTP library's own when a stream is
# cut after its headers arrived (the SDK does not wrap those).
UPSTREAM_ERRORS = (anthropic.APIError, httpx2.TransportError)

_backoff = wait_exponential_jitter(
    multiplier=BACKOFF_INITIAL, max=BACKOFF_MAX, jitter=BACKOFF_INITIAL
)


def retry_after(exc: BaseException) -> float | None:
    """Seconds the upstream asked us to wait, when it said so in a form we can read."""
    if not isinstance(exc, anthropic.APIStatusError):
        return None
    value = exc.response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_type(exc: BaseException) -> str:
    """Anthropic's error type (`overloaded_error`, …) or a close name for transport failures."""
    if isinstance(exc, anthropic.APIStatusError):
        return exc.type or f"http_{exc.status_code}"
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        return "timeout_error"
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return "connection_error"
    return type(exc).__name__


def is_retryable(exc: BaseException) -> bool:
    """Connection drops, 5xx/529, overloads inside a stream and a 429 that says when to come
    back retry; a 4xx is the caller's mistake and a 429 without retry-after is a spend limit."""
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError):
        return True
    if not isinstance(exc, anthropic.APIStatusError):
        return False
    if exc.status_code == 429:
        after = retry_after(exc)
        return after is not None and after <= MAX_RETRY_AFTER
    if exc.status_code >= 500 or exc.status_code in (408, 409):
        return True
    return exc.status_code < 400 and error_type(exc) in RETRYABLE_TYPES


def wait(state: RetryCallState) -> float:
    """Exponential backoff with jitter, but never sooner than a retry-after header asked."""
    backoff = float(_backoff(state))
    exc = state.outcome.exception() if state.outcome is not None else None
    after = retry_after(exc) if exc is not None else None
    return backoff if after is None else max(after, backoff)


def _policy(max_retries: int) -> dict[str, Any]:
    return {
        "stop": stop_after_attempt(max_retries + 1),
        "wait": wait,
        "retry": retry_if_exception(is_retryable),
        "before_sleep": before_sleep_log(logger, logging.WARNING),
        "reraise": True,  # the caller maps the SDK's own error, not tenacity's RetryError
    }


def retrying(max_retries: int) -> Retrying:
    return Retrying(**_policy(max_retries))


def async_retrying(max_retries: int) -> AsyncRetrying:
    return AsyncRetrying(**_policy(max_retries))


def to_error(exc: BaseException) -> SidecarError:
    """The `SidecarError` (or `RateLimitError`, …) for a failure the retries did not cure."""
    if isinstance(exc, anthropic.APIStatusError) and exc.status_code >= 400:
        after = retry_after(exc)
        headers = {} if after is None else {"retry-after": str(after)}
        return from_response(exc.status_code, exc.body, headers)
    kind = error_type(exc)
    if isinstance(exc, anthropic.APIStatusError):  # an error event inside a 200 stream
        message = exc.api_message or str(exc)
        return SidecarError(f"Claude failed mid-stream: {message}", error_type=kind, body=exc.body)
    return SidecarError(f"could not reach Claude ({kind}): {exc}", error_type=kind)


@contextmanager
def mapped_errors() -> Iterator[None]:
    """Callers catch `SidecarError`, never the SDK's or the HTTP library's own exceptions."""
    try:
        yield
    except UPSTREAM_ERRORS as exc:
        raise to_error(exc) from exc
