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

from shared.celery_app import RUN_JOB

# Celery's name for a process that sends without being a worker ("gen<pid>@<host>").
_ORIGIN = f"gen{os.getpid()}@{socket.gethostname()}"
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def run_job_message(job_id: str, queue: str) -> str:
    """The serialized message for `RUN_JOB(job_id)` on `queue` (priority 0, so the list is
    named after the queue itself)."""
    task_id = str(uuid.uuid4())
    body = json.dumps([[job_id], {}, _EMBED])
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
            "stamps": {},
        },
        "properties": {
            "correlation_id": task_id, "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
            "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
        },
    })
