"""Starting the processes a benchmark measures: each is stopped when the caller's ExitStack
closes, in the reverse order of starting."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common.output import ROOT
from tests.procs import RedisServer
from tests.simulator_fixtures import SimProcess, start_simulator
from tests.stack import Proc, service_env, start_api, start_worker


def bench_env(redis_url: str, sim_url: str, **extra: str) -> dict[str, str]:
    """`service_env` with the product's job lease (the tests' 4 s renews five times as often)
    and this checkout importable, for `bench.noop_app`."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return service_env(redis_url, sim_url, JOB_LEASE_SECONDS="20", PYTHONPATH=path, **extra)


def running_redis(stops: contextlib.ExitStack) -> RedisServer:
    """A private redis-server on a free port."""
    server = RedisServer().start()
    stops.callback(server.stop)
    return server


def running_simulator(stops: contextlib.ExitStack, **flags: Any) -> SimProcess:
    """The simulator, started with `--flag value` per keyword."""
    sim = start_simulator(**flags)
    stops.callback(sim.stop)
    return sim


def running_worker(stops: contextlib.ExitStack, env: dict[str, str], name: str,
                   queues: str | None = None, concurrency: int = 50,
                   grace: float = 10.0) -> Proc:
    """A Sidecar worker, given `grace` seconds to stop."""
    worker = start_worker(env, name, queues, concurrency)
    stops.callback(worker.stop, grace)
    return worker


def running_workers(stops: contextlib.ExitStack, env: dict[str, str], names: Sequence[str],
                    queues: str | None = None, concurrency: int = 50,
                    grace: float = 10.0) -> list[Proc]:
    """Sidecar workers started side by side, one per name."""
    with ThreadPoolExecutor(len(names)) as pool:
        futures = [pool.submit(start_worker, env, name, queues, concurrency) for name in names]
    workers: list[Proc] = []
    for future in futures:
        if future.exception() is None:
            workers.append(future.result())
            stops.callback(workers[-1].stop, grace)
    for future in futures:
        future.result()  # re-raise the first failure, the others being stopped already
    return workers


def running_api(stops: contextlib.ExitStack, env: dict[str, str], name: str = "api",
                grace: float = 10.0) -> Proc:
    """The API under uvicorn on a free port, up once `/health` answers."""
    api = start_api(env, name)
    stops.callback(api.stop, grace)
    return api
