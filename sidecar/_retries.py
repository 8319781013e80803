"""Which of Claude's failures `SidecarClient` tries again, how long it waits, and the
`SidecarError` a caller sees when it gives up.

The client builds its SDK clients with `max_retries=0` so that retries happen in one layer
only: here. What a failure means is decided in `shared.upstream`, as for the workers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anthropic
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from shared import upstream
from shared.upstream import UPSTREAM_ERRORS, error_type, retry_after
from sidecar.errors import SidecarError, from_response

logger = logging.getLogger("sidecar.client")

# A 429 asking for a longer wait than this is handed to the caller instead of slept through.
MAX_RETRY_AFTER = 60.0
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 8.0

_backoff = wait_exponential_jitter(
    multiplier=BACKOFF_INITIAL, max=BACKOFF_MAX, jitter=BACKOFF_INITIAL
)


def is_retryable(exc: BaseException) -> bool:
    return upstream.is_retryable(exc, MAX_RETRY_AFTER)


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
