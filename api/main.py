"""The API application: `uvicorn api.main:app`, built by `create_app()`.

The API validates, records and enqueues; it never calls Claude and never imports worker code.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from redis.asyncio import Redis

from api import errors
from api.hub import Hub
from api.routes import health, jobs, limits, metrics
from shared.celery_app import create_celery
from shared.jobstore import JobStore
from shared.limiter import Limiter
from shared.logs import configure_logging
from shared.settings import Settings, get_settings

VERSION = "0.1.0"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = Redis.from_url(settings.redis_url, max_connections=None)
        app.state.redis = redis
        app.state.store = JobStore(redis, settings.job_ttl_seconds)
        app.state.limiter = Limiter(redis, settings)
        app.state.hub = Hub(redis)
        await app.state.hub.start()
        try:
            yield
        finally:
            await app.state.hub.stop()
            await redis.aclose()

    app = FastAPI(title="Sidecar", version=VERSION, lifespan=lifespan,
                  description="Claude behind a job queue for the CKCIAS Community Resilience App.")
    app.state.settings = settings
    app.state.started = time.time()
    app.state.celery = create_celery(settings)
    if settings.enable_cors:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials="*" not in settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "Last-Event-ID"],
            expose_headers=["Location", "Retry-After"],
        )
    errors.install(app)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(limits.router)
    app.include_router(metrics.router)
    return app


app = create_app()
