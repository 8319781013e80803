"""`x-should-retry`: Claude's own word on another attempt outranks every rule of ours, as it
does in the SDK; without it our rules stand (a bare 429 is a spend limit)."""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from shared.upstream import is_retryable, should_retry
from tests.conftest import Stack
from tests.helpers import events, submit
from workers.claude import describe
from workers.failures import failure

REQUEST = httpx2.Request("POST", "https://api.anthropic.com/v1/messages")
STATUS_ERRORS: dict[int, type[anthropic.APIStatusError]] = {
    400: anthropic.BadRequestError, 401: anthropic.AuthenticationError,
    408: anthropic.APIStatusError, 429: anthropic.RateLimitError,
    500: anthropic.InternalServerError, 529: anthropic.OverloadedError,
}
TYPES = {400: "invalid_request_error", 401: "authentication_error", 408: "timeout_error",
         429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


def answer(status: int, **headers: str) -> anthropic.APIStatusError:
    body = {"type": "error", "error": {"type": TYPES[status], "message": "no"}}
    wire = {name.replace("_", "-"): value for name, value in headers.items()}
    response = httpx2.Response(status, request=REQUEST, headers=wire, json=body)
    return STATUS_ERRORS[status](f"Error code: {status}", response=response, body=body)


CASES = [
    # (status, headers, retried)
    (429, {"x_should_retry": "true"}, True),  # a bare 429 the API wants retried
    (429, {"x_should_retry": "true", "retry_after": "2"}, True),
    (429, {"x_should_retry": "false", "retry_after": "2"}, False),
    (529, {"x_should_retry": "false"}, False),  # false is final whatever the status
    (500, {"x_should_retry": "false"}, False),
    (400, {"x_should_retry": "true"}, True),
    (429, {}, False),  # no word from the API: a 429 without retry-after is a spend limit
    (429, {"retry_after": "2"}, True),
    (529, {}, True),
    (408, {}, True),
    (400, {}, False),
    (429, {"x_should_retry": "maybe"}, False),  # not a verdict: today's rules
]


@pytest.mark.parametrize(("status", "headers", "retried"), CASES)
def test_the_header_decides_before_the_status(status: int, headers: dict[str, str],
                                              retried: bool) -> None:
    assert is_retryable(answer(status, **headers)) is retried


@pytest.mark.parametrize("header", ["true", "false"])
@pytest.mark.parametrize("status", [400, 408, 429, 500, 529])
def test_a_verdict_is_obeyed_as_the_sdk_obeys_it(status: int, header: str) -> None:
    exc = answer(status, x_should_retry=header)
    sdk = anthropic.Anthropic(api_key="k", base_url="http://127.0.0.1:9")
    assert is_retryable(exc) is sdk._should_retry(exc.response) is should_retry(exc)


def test_the_clients_patience_still_bounds_a_long_retry_after() -> None:
    long_wait = answer(429, x_should_retry="true", retry_after="600")
    assert not is_retryable(long_wait, max_retry_after=60)
    assert is_retryable(answer(429, x_should_retry="true"), max_retry_after=60)


def test_a_429_that_asked_to_be_retried_is_no_spend_limit() -> None:
    held = describe(answer(429, x_should_retry="true"))
    assert held == {"type": "rate_limit_error",
                    "message": "Claude's rate limit held through every retry (HTTP 429)"}
    assert failure(answer(429, x_should_retry="true")) == ("failed", held)
    assert describe(answer(429))["type"] == "spend_limit"
    assert describe(answer(429, x_should_retry="false"))["type"] == "spend_limit"
    assert describe(answer(429, retry_after="3"))["type"] == "rate_limit_error"


@pytest.mark.integration
def test_a_bare_429_that_asks_to_be_retried_is_retried(sim_clean: Stack) -> None:
    sim_clean.sim("POST", "/_sim/faults", json={
        "kind": "status", "status": 429, "count": 1, "headers": {"x-should-retry": "true"}})
    final = events(sim_clean.url, submit(sim_clean.url, max_tokens=10))[-1].data
    assert final["status"] == "succeeded" and final["attempts"] == 2
    answers = sim_clean.sim("GET", "/_sim/stats")["requests"]["/v1/messages"]
    assert answers == {"200": 1, "429": 1}
