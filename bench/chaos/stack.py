"""The processes under test: Redis (either set-up), the simulator, two APIs on fixed ports and
three workers — and the blows the fault schedule deals them. Everything started is stopped by
`running_stack`'s exit, whatever ends the run."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.chaos.plan import Plan
from bench.chaos.redis_setups import RedisSetup, make_setup
from bench.common.output import log
from tests.procs import free_port, wait_until
from tests.simulator_fixtures import SimProcess, start_simulator
from tests.stack import Proc, service_env, start_worker

API_COUNT = 2
WORKER_COUNT = 3
WORKER_CONCURRENCY = 50


def services_env(setup: RedisSetup, sim_url: str) -> dict[str, str]:
    """The tests' service environment with the product's own lease settings (the tests shorten
    JOB_LEASE_SECONDS to 4 s; the bench keeps the default) and auth said off explicitly."""
    env = service_env("", sim_url, SIDECAR_AUTH="off", LOG_LEVEL="WARNING", **setup.env())
    env.pop("JOB_LEASE_SECONDS", None)
    return env


def spawn_api(env: dict[str, str], port: int, name: str, logs: Path) -> Proc:
    """`uvicorn api.main:app` on `port`, up once `/health` answers."""
    log = logs / f"{name}-{int(time.time())}.log"
    argv = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    api = Proc(name, proc, log, url=f"http://127.0.0.1:{port}")

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{api.output()[-3000:]}")
        try:
            return httpx.get(api.url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 60, f"{name} up")
    except BaseException:
        api.stop(5)
        raise
    return api


@dataclass
class Stack:
    plan: Plan
    setup: RedisSetup
    sim: SimProcess
    env: dict[str, str]
    logs: Path
    apis: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)
    retired: list[Proc] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    @property
    def api_urls(self) -> list[str]:
        return [api.url for api in self.apis]

    def start_worker(self) -> Proc:
        worker = start_worker(self.env, f"chaos{len(self.workers) + len(self.retired)}",
                              concurrency=WORKER_CONCURRENCY)
        self.workers.append(worker)
        return worker

    def kill_worker(self) -> tuple[Proc, list[str]]:
        """SIGKILL a random worker's whole process group; the owner prefixes its jobs carry."""
        victim = self.rng.choice(self.workers)
        pids = process_group(victim.proc.pid)
        victim.kill()
        self.workers.remove(victim)
        self.retired.append(victim)
        host = socket.gethostname()
        return victim, [f"{host}:{pid}:" for pid in pids]

    def restart_api(self, index: int) -> dict[str, Any]:
        """SIGTERM one API (its open streams cut), and start it again on the same port."""
        old = self.apis[index]
        started = time.monotonic()
        old.stop(10)
        self.retired.append(old)
        port = int(old.url.rsplit(":", 1)[1])
        self.apis[index] = spawn_api(self.env, port, old.name, self.logs)
        return {"api": old.name, "down_s": round(time.monotonic() - started, 2)}

    def stop(self) -> None:
        for proc in [*self.apis, *self.workers]:
            with contextlib.suppress(Exception):
                proc.stop(10)

    def forget_logs(self) -> None:
        """Remove the workers' logs (`start_worker` writes them to the temp folder)."""
        for proc in [*self.workers, *self.retired]:
            proc.log.unlink(missing_ok=True)


def process_group(pgid: int) -> list[int]:
    """Every pid in a process group (a worker and any children), read from /proc."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid:
                    pids.append(int(entry.name))
    return pids or [pgid]


@contextlib.contextmanager
def running_stack(plan: Plan) -> Iterator[Stack]:
    """Redis, the simulator, two APIs and three workers, all stopped on the way out."""
    with contextlib.ExitStack() as stops:
        root = Path(tempfile.mkdtemp(prefix="sidecar-chaos-"))
        keep = bool(os.environ.get("CHAOS_KEEP_LOGS"))
        if keep:
            log(f"API logs and Redis data kept in {root}")
        else:  # registered first, so it runs last, once every process has stopped
            stops.callback(shutil.rmtree, root, ignore_errors=True)
        setup = make_setup(plan.variant, root)
        stops.callback(setup.stop)
        setup.start()
        sim = start_simulator(log_level="WARNING", tokens_per_second=plan.tokens_per_second,
                              seed=plan.seed)
        stops.callback(sim.stop)
        env = services_env(setup, sim.url)
        stack = Stack(plan, setup, sim, env, root)
        if not keep:
            stops.callback(stack.forget_logs)
        stops.callback(stack.stop)
        for index in range(API_COUNT):
            stack.apis.append(spawn_api(env, free_port(), f"api{index}", root))
        for _ in range(WORKER_COUNT):
            stack.start_worker()
        yield stack
