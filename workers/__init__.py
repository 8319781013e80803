"""Sidecar's Celery workers: `celery -A workers worker` consumes both queues (`-Q` narrows)."""

from __future__ import annotations

from shared.celery_app import create_celery
from shared.logs import configure_logging
from shared.settings import get_settings
from workers.batch_tasks import register_batch_tasks
from workers.tasks import register

_settings = get_settings()
configure_logging(_settings.log_level)
app = create_celery(_settings)
register(app)
register_batch_tasks(app)

__all__ = ["app"]
