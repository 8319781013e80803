"""A job request laid out as a job record: validated against its type and model, with the stable
hash the response cache keys it by. Used by every way jobs are created (API, batches, nightly)."""

from __future__ import annotations

from shared import cache, jobtypes, models
from shared.errors import InvalidInput
from shared.limiter import counted_locally, estimate_input_tokens
from shared.record import Record, new_job_id, record_of, utcnow
from shared.schemas import JobRequest
from shared.settings import Settings
from shared.taskwire import Hints
from shared.validation import field_path, parse


def job_fields(request: JobRequest, settings: Settings, tenant: str = "", subject: str = "",
               job_id: str | None = None, prefix: tuple[str | int, ...] = ()) -> Record:
    """Validate the request against its job type and model, and lay it out as a record owned
    by `tenant` (and `subject`, for a browser token's job). `prefix` locates the request in a
    larger body (a batch) for error messages."""
    job_type = jobtypes.get(request.type)
    if job_type is None:
        known = ", ".join(jobtypes.names())
        field = field_path((*prefix, "type"))
        raise InvalidInput(f"{field}: unknown job type {request.type!r} (known: {known})",
                           field=field)
    data = parse(job_type.input_model, request.input, (*prefix, "input"))
    try:
        model = models.resolve(request.model or settings.claude_model, settings.model_prices)
    except ValueError as exc:
        field = field_path((*prefix, "model"))
        raise InvalidInput(f"{field}: {exc}", field=field) from None
    max_tokens = request.max_tokens or job_type.default_max_tokens
    limit = models.max_output_tokens(model)
    if max_tokens > limit:
        field = field_path((*prefix, "max_tokens"))
        raise InvalidInput(f"{field}: {max_tokens} exceeds {model}'s limit of {limit}",
                           field=field)
    claude_request = {**job_type.build_request(data), "model": model, "max_tokens": max_tokens,
                      "temperature": request.temperature}
    # Scoped per tenant by default: one tenant's answers never reach another's callers.
    cache_scope = {"tenant": tenant} if settings.cache_scope == "tenant" else {}
    return record_of({
        "id": job_id or new_job_id(request.idempotency_key, f"{tenant}\x00{subject}"),
        "tenant": tenant,
        "subject": subject,
        "type": request.type,
        "status": "queued",
        "model": model,
        "priority": request.priority or job_type.default_priority,
        "input": data.model_dump_json(),
        "max_tokens": str(max_tokens),
        "temperature": "" if request.temperature is None else repr(request.temperature),
        "cache_key": cache.digest({**claude_request, **cache_scope}),
        "batch_id": request.batch_id or "",
        "created_at": utcnow(),
        "attempts": "0",
        "input_tokens_estimate": str(estimate_input_tokens(claude_request)),
    })


def hints(fields: Record, settings: Settings) -> Hints | None:
    """What the job's message tells a worker so it can take capacity and claim the job in one
    round trip — none for a request big enough that the worker counts its tokens exactly."""
    estimate = int(fields.get("input_tokens_estimate") or settings.count_tokens_above)
    if not counted_locally(estimate, settings.count_tokens_above):
        return None
    return Hints(fields["model"], fields["priority"], int(fields["max_tokens"]), estimate)
