"""Wire shapes shared by the API, the workers and the client library."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

Priority = Literal["interactive", "batch"]
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class Strict(BaseModel):
    """Unknown fields are errors: a typo in a field name should not be silently ignored."""

    model_config = ConfigDict(extra="forbid", strict=True)


class HistoryItem(Strict):
    role: Literal["user", "assistant"]
    content: StrictStr = Field(min_length=1, max_length=200_000)


class JobRequest(Strict):
    """The body of `POST /api/jobs`; `input` is validated by the job type's own schema."""

    type: StrictStr
    input: dict[str, Any]
    model: StrictStr | None = Field(None, max_length=100)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=1.0)
    priority: Priority | None = None
    idempotency_key: StrictStr | None = Field(None, min_length=1, max_length=200)
    cache: bool = True
    batch_id: StrictStr | None = Field(None, max_length=100)


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class ErrorInfo(BaseModel):
    type: str
    message: str


class JobLinks(BaseModel):
    self: str
    events: str


class JobView(BaseModel):
    """A job as `GET /api/jobs/{id}` shows it; also the data of the stream's `done` event."""

    id: str
    type: str
    status: Status
    model: str
    priority: Priority
    result: dict[str, Any] | None = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    error: ErrorInfo | None = None
    attempts: int = 0
    created_at: str
    started_at: str | None = None
    first_token_at: str | None = None
    finished_at: str | None = None
    batch_id: str | None = None
    links: JobLinks


class JobAccepted(BaseModel):
    id: str
    type: str
    status: Status
    links: JobLinks
    cached: bool = False
