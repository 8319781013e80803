"""What a job's caller reads when its run fails: the status, an error type and a fixed,
caller-safe sentence per kind of failure. An exception's own text can carry internals (paths,
hosts, a library's wording) or Claude's words, so it goes only to the worker's log, with the
job id."""

from __future__ import annotations

import logging

from shared.jobtypes import InvalidModelOutput
from workers import admission, claude
from workers.context import Cancelled

log = logging.getLogger("sidecar.worker")

MODEL_OUTPUT = "Claude's answer did not have the shape this job type requires"
NO_CAPACITY = "no rate-limit capacity for the model came before the job's queue deadline"
BAD_JOB = "the job's stored request could not be read"
CRASHED = "the worker failed while running the job"


def failure(exc: Exception) -> tuple[str, dict[str, str] | None]:
    """The status and error a job ends with when its run raised `exc`."""
    if isinstance(exc, Cancelled):
        return "cancelled", None
    if isinstance(exc, InvalidModelOutput):
        return "failed", {"type": "invalid_model_output", "message": MODEL_OUTPUT}
    if isinstance(exc, admission.RateLimitDeadline):
        return "failed", {"type": "rate_limited", "message": NO_CAPACITY}
    if isinstance(exc, claude.anthropic.APIError):
        return "failed", claude.describe(exc)
    if claude.is_retryable(exc):  # a connection error that outlasted the retries
        return "failed", claude.caller_error(claude.error_type(exc))
    if isinstance(exc, ValueError | KeyError):
        return "failed", {"type": "invalid_job", "message": BAD_JOB}
    # A bug must fail the job visibly, not loop it through leases.
    return "failed", {"type": "internal_error", "message": CRASHED}


def logged_failure(job_id: str, exc: Exception) -> tuple[str, dict[str, str] | None]:
    """`failure(exc)`, with the exception itself logged for operators (a traceback for a bug)."""
    status, error = failure(exc)
    if error is not None:
        crashed = error["type"] == "internal_error"
        log.log(logging.ERROR if crashed else logging.WARNING, "job failed",
                exc_info=exc if crashed else None,
                extra={"job_id": job_id, "error_type": error["type"],
                       "detail": f"{type(exc).__name__}: {claude.message(exc)}"})
    return status, error
