"""The ASGI app and the uvicorn runner.

Plain Starlette routing keeps per-request overhead low; uvicorn runs with uvloop and httptools,
a deep accept backlog and a keep-alive longer than any client pool's, so hundreds of
concurrent streams connect at once and pooled connections are never closed under a client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulator.batch_api import BatchesApi
from simulator.config import SimConfig
from simulator.control_api import ControlApi
from simulator.endpoint import Handler, api_endpoint
from simulator.messages_api import MessagesApi
from simulator.state import SimState
from simulator.streaming import DropConnection
from simulator.wire import ApiError, error_response, new_request_id

log = logging.getLogger("simulator")


def create_app(config: SimConfig) -> Starlette:
    """A fresh simulator with its own state (reachable as `app.state.sim`)."""
    state = SimState(config)
    handler = _unmatched_handler(state)
    app = Starlette(routes=_routes(state), exception_handlers={404: handler, 405: handler})
    app.state.sim = state
    quiet_dropped_connections()
    return app


def _routes(state: SimState) -> list[Route]:
    messages, batches, control = MessagesApi(state), BatchesApi(state), ControlApi(state)
    batch_path = "/v1/messages/batches/{batch_id}"

    def api(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(path, api_endpoint(state, path, handler), methods=methods)

    def ctl(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(path, api_endpoint(state, path, handler, auth=False), methods=methods)

    return [
        api("/v1/messages", messages.create, ["POST"]),
        api("/v1/messages/count_tokens", messages.count_tokens, ["POST"]),
        api("/v1/messages/batches", batches.create, ["POST"]),
        api("/v1/messages/batches", batches.list, ["GET"]),
        api(batch_path, batches.retrieve, ["GET"]),
        api(batch_path, batches.delete, ["DELETE"]),
        api(f"{batch_path}/cancel", batches.cancel, ["POST"]),
        api(f"{batch_path}/results", batches.results, ["GET"]),
        ctl("/_sim/health", control.health, ["GET"]),
        ctl("/_sim/stats", control.stats, ["GET"]),
        ctl("/_sim/reset", control.reset, ["POST"]),
        ctl("/_sim/config", control.get_config, ["GET"]),
        ctl("/_sim/config", control.patch_config, ["POST", "PATCH"]),
        ctl("/_sim/faults", control.get_faults, ["GET"]),
        ctl("/_sim/faults", control.add_fault, ["POST"]),
        ctl("/_sim/faults", control.clear_faults, ["DELETE"]),
    ]


def _unmatched_handler(state: SimState) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def unmatched(request: Request, exc: Exception) -> Response:
        """Unknown paths and methods answer in the API's error shape, like everything else."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = "Not Found" if status == 404 else str(getattr(exc, "detail", exc))
        state.stats.record_request("(unmatched)", status)
        return error_response(ApiError(status, message), new_request_id())

    return unmatched


class _DropFilter(logging.Filter):
    """Hide uvicorn's traceback for connections closed on purpose by a `drop` fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DropConnection))


def quiet_dropped_connections() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropFilter) for f in logger.filters):
        logger.addFilter(_DropFilter())


def run(config: SimConfig) -> None:
    """Serve until interrupted; blocking, meant for `python -m simulator` and the project CLI."""
    server_config = uvicorn.Config(
        create_app(config),
        host=config.host,
        port=config.port,
        loop="auto",  # uvloop and httptools whenever installed (uvicorn[standard])
        http="auto",
        log_level="warning",
        access_log=False,
        server_header=False,
        backlog=4096,
        timeout_keep_alive=75,
        timeout_graceful_shutdown=2,
    )
    quiet_dropped_connections()  # uvicorn.Config re-applies logging config; filter after it
    log.info("simulator listening on http://%s:%d", config.host, config.port)
    uvicorn.Server(server_config).run()
