"""The Celery message that runs one job, as bytes ready to push onto a queue's Redis list.

The API does not publish through kombu: it pushes this message inside the same Lua script that
records the job (`scripts.SUBMIT`), so a job is never recorded without being queued, or queued
without being recorded, even when the API dies between the two; and a submission costs one
Redis round trip instead of three. The message is the one `celery.send_task(RUN_JOB,
args=[job_id], queue=queue)` writes (task protocol 2, kombu's Redis transport, JSON body) —
`tests/test_taskwire.py` holds the two side by side, and every integration test runs it through
a real worker.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from shared.celery_app import RUN_JOB

# The message header that carries a job's `Hints`; Celery hands unknown headers to the task as
# attributes of `task.request`.
HINTS_HEADER = "sidecar_hints"

# Celery's name for a process that sends without being a worker ("gen<pid>@<host>").
_ORIGIN = f"gen{os.getpid()}@{socket.gethostname()}"
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


@dataclass(frozen=True)
class Hints:
    """What a worker needs to take capacity for a job before it has read the job's record, so
    that taking capacity and claiming the job cost one round trip. They ride in the message's
    headers: the task's arguments stay the job id alone, and the record stays the authority on
    everything else."""

    model: str
    priority: str
    max_tokens: int
    input_tokens: int  # the local estimate the worker would make itself

    def header(self) -> dict[str, Any]:
        return {"model": self.model, "priority": self.priority, "max_tokens": self.max_tokens,
                "input_tokens": self.input_tokens}

    @classmethod
    def from_header(cls, value: Any) -> Hints | None:
        """The hints of a delivered message; None when it carries none (a job requeued by a
        worker, or sent by an older API) or they do not parse."""
        try:
            return cls(str(value["model"]), str(value["priority"]), int(value["max_tokens"]),
                       int(value["input_tokens"]))
        except (TypeError, KeyError, ValueError):
            return None


def unacked_job(entry: bytes | str) -> tuple[str, str] | None:
    """The (job id, queue) of a RUN_JOB message as kombu keeps it while unacknowledged
    (`[message, exchange, routing key]`); None for any other task or a payload that does not
    parse."""
    try:
        message, _, routing_key = json.loads(entry)
        if message["headers"]["task"] != RUN_JOB:
            return None
        args = json.loads(base64.b64decode(message["body"]))[0]
        return str(args[0]), str(routing_key or message["properties"]["delivery_info"]
                                 ["routing_key"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def run_job_message(job_id: str, queue: str, hints: Hints | None = None) -> str:
    """The serialized message for `RUN_JOB(job_id)` on `queue` (priority 0, so the list is
    named after the queue itself), with the job's `hints` as a header."""
    task_id = str(uuid.uuid4())
    body = json.dumps([[job_id], {}, _EMBED])
    extra = {HINTS_HEADER: hints.header()} if hints is not None else {}
    return json.dumps({
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py", "task": RUN_JOB, "id": task_id, "shadow": None, "eta": None,
            "expires": None, "group": None, "group_index": None, "retries": 0,
            "timelimit": [None, None], "root_id": task_id, "parent_id": None,
            "argsrepr": repr([job_id]), "kwargsrepr": "{}", "origin": _ORIGIN,
            "ignore_result": None, "replaced_task_nesting": 0, "stamped_headers": None,
            "stamps": {}, **extra,
        },
        "properties": {
            "correlation_id": task_id, "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
            "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
        },
    })
