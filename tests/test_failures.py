"""A failed job's error, as callers read it, never carries an exception's own text (internals,
or Claude's words): a fixed sentence per kind of failure; the worker logs the detail with the
job id."""

from __future__ import annotations

import logging

import anthropic
import httpx2
import pytest

from shared.jobtypes import InvalidModelOutput
from shared.upstream import caller_error
from workers import admission
from workers.context import Cancelled
from workers.failures import failure, logged_failure

SECRET = "/srv/sidecar/secret.py line 12 sk-ant-api03-XXXX 10.0.3.7:6379"
REQUEST = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")


def api_error(cls: type[anthropic.APIStatusError], status: int, kind: str,
              headers: dict[str, str] | None = None) -> anthropic.APIStatusError:
    body = {"type": "error", "error": {"type": kind, "message": SECRET}}
    response = httpx2.Response(status, request=REQUEST, headers=headers, json=body)
    return cls(f"Error code: {status} - {body}", response=response, body=body)


CASES: list[tuple[Exception, str]] = [
    (InvalidModelOutput(f"drought_report input is invalid: {SECRET}"), "invalid_model_output"),
    (admission.RateLimitDeadline(SECRET), "rate_limited"),
    (api_error(anthropic.BadRequestError, 400, "invalid_request_error"),
     "invalid_request_error"),
    (api_error(anthropic.AuthenticationError, 401, "authentication_error"),
     "authentication_error"),
    (api_error(anthropic.InternalServerError, 529, "overloaded_error"), "overloaded_error"),
    (api_error(anthropic.RateLimitError, 429, "rate_limit_error"), "spend_limit"),
    (api_error(anthropic.BadRequestError, 400, f"<b>{SECRET}</b>"), "upstream_error"),
    (anthropic.APIConnectionError(message=SECRET, request=REQUEST), "connection_error"),
    (httpx2.ReadTimeout(SECRET), "timeout_error"),
    (ValueError(SECRET), "invalid_job"),
    (KeyError(SECRET), "invalid_job"),
    (RuntimeError(SECRET), "internal_error"),
    (ZeroDivisionError(SECRET), "internal_error"),
]


@pytest.mark.parametrize(("exc", "kind"), CASES, ids=[k for _, k in CASES])
def test_failure_messages_are_fixed_and_safe(exc: Exception, kind: str) -> None:
    status, error = failure(exc)
    assert status == "failed" and error is not None
    assert error["type"] == kind
    assert error["message"] and SECRET not in error["message"]
    for fragment in ("secret", "sk-ant", "10.0.3.7", "Error", "line 12", type(exc).__name__):
        assert fragment not in error["message"], fragment


def test_upstream_errors_keep_their_status() -> None:
    _, error = failure(api_error(anthropic.InternalServerError, 529, "overloaded_error"))
    assert error == {"type": "overloaded_error",
                     "message": "Claude was overloaded through every retry (HTTP 529)"}
    assert caller_error("api_error", 200)["message"] == "Claude had an internal error"
    assert caller_error("Weird Type!")["type"] == "upstream_error"


def test_a_cancelled_run_has_no_error() -> None:
    assert failure(Cancelled()) == ("cancelled", None)


def test_the_detail_goes_to_the_log_with_the_job_id(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sidecar.worker"):
        _, upstream = logged_failure("job-1", api_error(anthropic.BadRequestError, 400,
                                                        "invalid_request_error"))
        _, crashed = logged_failure("job-2", RuntimeError(SECRET))
    assert upstream is not None and crashed is not None
    first, second = caplog.records
    assert first.job_id == "job-1" and SECRET in first.detail  # type: ignore[attr-defined]
    assert first.levelno == logging.WARNING and first.exc_info is None
    assert second.job_id == "job-2" and SECRET in second.detail  # type: ignore[attr-defined]
    assert second.levelno == logging.ERROR and second.exc_info is not None
