"""What a worker process gives every job it runs, and the signals a call loop raises."""

from __future__ import annotations

from dataclasses import dataclass, field

import anthropic

from shared.cache import ResponseCache
from shared.jobstore import JobStore
from shared.limiter import Limiter
from shared.metrics import Tally
from shared.settings import Settings
from workers.metrics import WorkerMetrics


class LostJob(Exception):
    """Another worker took the job over (our lease lapsed); stop without writing."""


class Cancelled(Exception):
    """The job's owner asked to cancel it."""


@dataclass
class Context:
    """What a worker process gives every job it runs; built once per process."""

    settings: Settings
    store: JobStore
    client: anthropic.AsyncAnthropic
    worker_name: str
    limiter: Limiter
    cache: ResponseCache
    tally: Tally
    metrics: WorkerMetrics
    cancel_requested: set[str] = field(default_factory=set)
    handing_back: set[str] = field(default_factory=set)  # jobs to return to the queue
    token_window: float = 0.01
    retry_base: float = 0.5
    retry_cap: float = 30.0
