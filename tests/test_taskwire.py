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
from shared.taskwire import HINTS_HEADER, Hints, run_job_message

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



def test_hints_ride_as_the_header_celery_would_write(redis_url: str) -> None:
    hints = Hints("claude-sonnet-5-5", "interactive", 300, 42)
    app = create_celery(load_settings(redis_url=redis_url))
    client = redis.Redis.from_url(redis_url)
    try:
        app.send_task(RUN_JOB, args=["job-2"], queue="interactive",
                      headers={HINTS_HEADER: hints.header()})
        celerys = json.loads(client.rpop("interactive"))
        ours = json.loads(run_job_message("job-2", "interactive", hints))
    finally:
        app.close()
        client.close()
    assert _comparable(ours) == _comparable(celerys)
    assert Hints.from_header(ours["headers"][HINTS_HEADER]) == hints


def test_missing_or_garbled_hints_are_none() -> None:
    assert Hints.from_header(None) is None
    assert Hints.from_header({"model": "m"}) is None
    assert Hints.from_header({"model": "m", "priority": "batch", "max_tokens": "many",
                              "input_tokens": 3}) is None
