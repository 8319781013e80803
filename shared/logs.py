"""JSON-lines logging for every Sidecar process.

One event per line with its context fields (job id, attempt, model, timings) as keys, so logs
can be searched without parsing prose. Prompts, answers and keys are never logged at INFO.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# Celery's lines for each task received and succeeded: the worker's own "job started" and "job
# ended" say the same with the job's id, and formatting them took ~15 % of the time of the
# thread that hands out every job. Failures are still logged (at ERROR).
CELERY_PER_TASK = ("celery.worker.strategy", "celery.app.trace")

_TOKEN_IN_URL = re.compile(r"(access_token=)[^&\s\"']+")


def redact(text: str) -> str:
    """A URL or log line with any `access_token=` value replaced."""
    return _TOKEN_IN_URL.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """Browser tokens travel in event streams' URLs (`?access_token=`, for EventSource): the
    access logs of uvicorn (or any logger given this filter) show the URL without them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; `extra=` fields become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "anthropic", *CELERY_PER_TASK):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
