"""The API queues jobs with a message it builds itself (`shared.taskwire`) inside its submit
script: it must be the message Celery's own `send_task` writes, or workers would drift from it
on an upgrade. Both are sent to a real redis-server and compared field by field; every
integration test then runs such messages through real workers."""

from __future__ import annotations

import base64
import json
from typing import Any

import redis

from shared.celery_app import RUN_JOB, create_celery
from shared.settings import load_settings
from shared.taskwire import run_job_message

# Fields that differ between any two sends: fresh ids, and the sending process.
PER_SEND = {("headers", "id"), ("headers", "root_id"), ("headers", "origin"),
            ("properties", "correlation_id"), ("properties", "delivery_tag")}


def _comparable(message: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in message.items() if not isinstance(v, dict)}
    for part in ("headers", "properties"):
        out[part] = {k: v for k, v in message[part].items()
                     if (part, k) not in PER_SEND and k != "reply_to"}
    return out


def test_message_is_the_one_celery_sends(redis_url: str) -> None:
    app = create_celery(load_settings(redis_url=redis_url))
    client = redis.Redis.from_url(redis_url)
    try:
        app.send_task(RUN_JOB, args=["job-1"], queue="batch")
        celerys = json.loads(client.rpop("batch"))
        ours = json.loads(run_job_message("job-1", "batch"))
    finally:
        app.close()
        client.close()
    assert _comparable(ours) == _comparable(celerys)
    task_id = ours["headers"]["id"]
    assert task_id == ours["headers"]["root_id"] == ours["properties"]["correlation_id"]
    assert ours["properties"]["delivery_tag"] != ours["headers"]["id"]
    assert json.loads(base64.b64decode(ours["body"]))[0] == ["job-1"]

