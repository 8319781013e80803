"""Starting the real Sidecar processes for integration tests: Celery workers and the API under
uvicorn, each on loopback with the test's own Redis and simulator."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.procs import free_port, stop_process, wait_until


def service_env(redis_url: str, simulator_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIDECAR_", "CLAUDE_"))}
    env.update(
        REDIS_URL=redis_url,
        ANTHROPIC_BASE_URL=simulator_url,
        ANTHROPIC_API_KEY="sk-ant-test",
        JOB_LEASE_SECONDS="4",
        WORKER_METRICS_PORT="0",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        # Said explicitly: these stacks test everything but auth (tests/test_auth*.py do that).
        SIDECAR_AUTH="off",
    )
    env.update(extra)
    return env


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, grace: float = 10.0) -> None:
        stop_process(self.proc, grace)

    def kill(self) -> None:
        """SIGKILL the whole process group, as an OOM kill or a node loss would."""
        import signal

        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def _spawn(name: str, argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    log = Path(tempfile.mkstemp(prefix=f"sidecar-{name}-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    return proc, log


def start_worker(env: dict[str, str], name: str = "w", queues: str | None = None,
                 concurrency: int = 50, app: str = "workers", pool: str | None = None) -> Proc:
    """A Celery worker of `app` (Sidecar's own by default; the benchmarks bring theirs), up once
    it says it is ready."""
    argv = [sys.executable, "-m", "celery", "-A", app, "worker", "-l", "info",
            "-n", f"{name}-{free_port()}@%h", "-c", str(concurrency), "--without-gossip",
            "--without-mingle"]
    if queues:
        argv += ["-Q", queues]
    if pool:
        argv += ["-P", pool]
    proc, log = _spawn(name, argv, env)
    worker = Proc(name, proc, log)
    return _started(worker, lambda: "ready." in worker.output(), "worker ready")


def start_beat(env: dict[str, str], schedule_dir: Path) -> Proc:
    """Celery beat (its schedule file in `schedule_dir`), for tests of periodic work."""
    argv = [sys.executable, "-m", "celery", "-A", "workers", "beat",
            "-s", str(schedule_dir / "schedule"), "-l", "info"]
    proc, log = _spawn("beat", argv, env)
    return Proc("beat", proc, log)


def start_api(env: dict[str, str], name: str = "api") -> Proc:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning"]
    proc, log = _spawn(name, argv, env)
    api = Proc(name, proc, log, url=f"http://127.0.0.1:{port}")

    def up() -> bool:
        try:
            return httpx.get(api.url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return _started(api, up, "api up")


def _started(started: Proc, up: Callable[[], bool], what: str, timeout: float = 30) -> Proc:
    """`started` once `up()`; a process that exits or is not up in time is stopped (never left
    running behind a failed start) and its output raised."""
    try:
        wait_until(lambda: started.proc.poll() is not None or up(), timeout, what)
    except TimeoutError as exc:
        started.stop(5)
        output = started.output()[-3000:]
        raise TimeoutError(f"{what} not met within {timeout}s:\n{output}") from exc
    if started.proc.poll() is not None:
        raise RuntimeError(f"{started.name} exited:\n{started.output()[-3000:]}")
    return started
