"""The API application: `uvicorn api.main:app`, built by `create_app()`.

The API validates, records and enqueues; it never calls Claude and never imports worker code.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import errors, openapi
from api.auth import Keyring
from api.draining import watch_sigterm
from api.headers import SecurityHeaders
from api.hub import Hub
from api.observe import Observe
from api.routes import batches, chat, demo, health, jobs, limits, metrics, tokens, usage
from api.streams import StreamSlots
from api.submission import Backend
from shared.cache import ResponseCache
from shared.celery_app import create_celery
from shared.heap import freeze_startup_objects
from shared.jobstore import JobStore
from shared.limiter import Limiter
from shared.logs import configure_logging
from shared.metrics import Tally
from shared.redis import connect
from shared.settings import Settings, SettingsError, get_settings

VERSION = "0.1.0"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.require_auth()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect(settings)
        app.state.redis = redis
        app.state.store = JobStore(redis, settings.job_ttl_seconds)
        app.state.limiter = Limiter(redis, settings)
        app.state.tally = Tally(redis)
        app.state.backend = Backend(settings, redis, app.state.store, app.state.celery,
                                    app.state.limiter,
                                    ResponseCache(redis, settings.cache_ttl_seconds),
                                    app.state.tally)
        app.state.hub = Hub(redis)
        await app.state.hub.start(app.state.draining)
        freeze_startup_objects()
        watch_sigterm(app.state.draining)
        background = [asyncio.create_task(health.watch_readiness(app)),
                      asyncio.create_task(app.state.tally.run())]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await app.state.hub.stop()
            await redis.aclose()

    app = FastAPI(title="Sidecar", version=VERSION, lifespan=lifespan,
                  description="Claude behind a job queue for the CKCIAS Community Resilience App.")
    app.state.settings = settings
    app.state.keyring = Keyring(settings)
    app.state.streams = StreamSlots(settings.max_streams_per_tenant)
    app.state.started = time.time()
    app.state.readiness = {"redis": "unknown", "workers": 0}
    app.state.draining = asyncio.Event()
    app.state.celery = create_celery(settings)
    if settings.enable_cors:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials="*" not in settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "Last-Event-ID"],
            expose_headers=["Location", "Retry-After", "X-Job-Id"],
        )
    app.add_middleware(Observe)
    app.add_middleware(SecurityHeaders)
    errors.install(app)
    openapi.install(app)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(chat.router)
    app.include_router(batches.router)
    app.include_router(tokens.router)
    app.include_router(usage.router)
    app.include_router(limits.router)
    app.include_router(metrics.router)
    app.include_router(demo.router)
    return app


@functools.cache
def _app_or_exit() -> FastAPI:
    """The app uvicorn serves; a configuration it cannot run (no keys, a bad value) ends the
    process with the message alone, not a traceback."""
    try:
        return create_app()
    except SettingsError as exc:
        sys.exit(f"sidecar api: {exc}")


def __getattr__(name: str) -> FastAPI:
    # `uvicorn api.main:app` builds the app when it asks for it, not when anything imports
    # this module (a test importing `create_app` must not need a configured environment).
    if name == "app":
        return _app_or_exit()
    raise AttributeError(name)
