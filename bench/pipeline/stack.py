"""The processes `bench.pipeline` measures: redis-server, simulator, Sidecar worker, the no-op
baseline worker and the API."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from bench.common.meters import CpuMeter, wait_idle
from bench.common.procs import (
    bench_env,
    running_api,
    running_redis,
    running_simulator,
    running_worker,
)
from bench.noop_app import QUEUE
from bench.pipeline.plan import WORKER_CONCURRENCY
from tests.procs import RedisServer
from tests.simulator_fixtures import SimProcess
from tests.stack import Proc, start_worker


@dataclass
class Stack:
    redis: RedisServer
    sim: SimProcess
    worker: Proc
    noop: Proc
    api: Proc

    def pids(self) -> dict[str, list[int]]:
        assert self.redis.proc is not None
        return {"worker": [self.worker.proc.pid], "api": [self.api.proc.pid],
                "simulator": [self.sim.pid], "redis": [self.redis.proc.pid]}

    def meter(self, *roles: str) -> CpuMeter:
        """CPU seconds of the named processes (all by default) and of this bench's own client
        side, from now on."""
        pids = self.pids()
        return CpuMeter({r: pids[r] for r in roles or pids}, client=True, digits=3)

    async def quiesce(self) -> None:
        """Return once the worker and the API are idle."""
        await wait_idle([self.worker.proc.pid, self.api.proc.pid])


def start_noop_worker(env: dict[str, str]) -> Proc:
    """The baseline's worker: `start_worker`'s command line, on the no-op app and its queue."""
    return start_worker(env, "noop", QUEUE, WORKER_CONCURRENCY, app="bench.noop_app")


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    with contextlib.ExitStack() as stops:
        server = running_redis(stops)
        sim = running_simulator(stops, log_level="WARNING")
        env = bench_env(server.url, sim.url, WORKER_CONCURRENCY=str(WORKER_CONCURRENCY))
        worker = running_worker(stops, env, "bench", concurrency=WORKER_CONCURRENCY)
        noop = start_noop_worker(env)
        stops.callback(noop.stop)
        api = running_api(stops, env)
        yield Stack(server, sim, worker, noop, api)
