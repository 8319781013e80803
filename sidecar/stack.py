"""`sidecar up`: bring up every process of a local stack and take it down again.

Only what is missing is started: Redis when REDIS_URL answers nothing, the simulator when no
ANTHROPIC_API_KEY is set. Children run in their own process groups so one Ctrl-C or SIGTERM
stops all of them, grandchildren included.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from shared.settings import Settings

SIMULATOR_KEY = "sk-ant-simulator"


@dataclass
class Service:
    """One child process and the check that tells when it is ready."""

    name: str
    argv: list[str]
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code < 500
        except httpx.HTTPError:
            return False

    return check


def redis_service(settings: Settings, data_dir: Path) -> Service | None:
    """A local redis-server for REDIS_URL, or None when something already answers there (or
    Sentinel names the Redis to use)."""
    if settings.redis_sentinels:
        return None
    url = urlparse(settings.redis_url)
    host, port = url.hostname or "localhost", url.port or 6379
    if port_open(host, port):
        return None
    if host not in {"localhost", "127.0.0.1", "::1"}:
        raise SystemExit(f"REDIS_URL {settings.redis_url} is not reachable and not local")
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("REDIS_URL answers nothing and no redis-server is on PATH: install one")
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
            "--appendonly", "yes", "--save", ""]
    return Service("redis", argv, lambda: port_open("127.0.0.1", port))


def simulator_service(settings: Settings) -> Service | None:
    """The Claude simulator, when there is no key to reach Claude with."""
    if settings.api_key():
        return None
    port = settings.simulator_port
    argv = [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", str(port)]
    return Service("simulator", argv, http_ok(f"http://127.0.0.1:{port}/_sim/health"))


def local_only(settings: Settings) -> bool:
    """No keys: auth is off (said explicitly to the API) and nothing listens beyond loopback."""
    return not settings.sidecar_api_keys


def api_service(settings: Settings) -> Service:
    port = settings.server_port
    host = "127.0.0.1" if local_only(settings) else "0.0.0.0"
    argv = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", host,
            "--port", str(port), "--log-level", settings.log_level.lower()]
    return Service("api", argv, http_ok(f"http://127.0.0.1:{port}/health"))


def worker_service(settings: Settings) -> Service:
    argv = [sys.executable, "-m", "celery", "-A", "workers", "worker", "-l",
            settings.log_level.lower(), "-Q", "interactive,batch"]

    def ready() -> bool:
        try:
            url = f"http://127.0.0.1:{settings.server_port}/ready"
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return Service("worker", argv, ready)


FLOWER_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "flower" / "flowerconfig.py"


def flower_service(settings: Settings, data_dir: Path, credentials: str) -> Service:
    """Flower behind basic auth (its /metrics and /healthcheck too), state kept on disk."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "celery", "-A", "workers", "flower", "--address=127.0.0.1",
            f"--port={settings.flower_port}", f"--conf={FLOWER_CONFIG}", "--persistent=True",
            f"--db={data_dir / 'flower.db'}"]
    user, _, password = credentials.partition(":")

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{settings.flower_port}/healthcheck",
                             auth=(user, password), timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return Service("flower", argv, ready, env={"FLOWER_BASIC_AUTH": credentials})


def flower_credentials(settings: Settings) -> str:
    """The configured `user:password`, or a fresh one for this run."""
    if settings.flower_basic_auth:
        return settings.flower_basic_auth.get_secret_value()
    return f"admin:{secrets.token_urlsafe(12)}"


def plan(settings: Settings, data_dir: Path, flower: str) -> list[Service]:
    """What `sidecar up` starts, in order: only the missing backing services, then the API, a
    worker for both queues, and Flower."""
    optional = [redis_service(settings, data_dir / "redis"), simulator_service(settings)]
    return [s for s in optional if s is not None] + [
        api_service(settings), worker_service(settings),
        flower_service(settings, data_dir / "flower", flower)]


def child_env(settings: Settings) -> dict[str, str]:
    """Environment for API and workers: point them at the simulator when it stands in; with no
    keys configured, auth off for this local stack."""
    env = dict(os.environ)
    if local_only(settings):
        env.update(SIDECAR_AUTH="off", WORKER_METRICS_HOST="127.0.0.1")
    if not settings.api_key():
        env["ANTHROPIC_API_KEY"] = SIMULATOR_KEY
        env["ANTHROPIC_BASE_URL"] = f"http://127.0.0.1:{settings.simulator_port}"
    return env


class Stack:
    """Starts services in order, waits for each to be ready, stops them in reverse."""

    def __init__(self, services: list[Service], base_env: dict[str, str]) -> None:
        self.services = services
        self.base_env = base_env

    def start(self, on_ready: Callable[[Service], None], timeout: float = 30.0) -> None:
        for service in self.services:
            service.process = subprocess.Popen(
                service.argv, env={**self.base_env, **service.env}, start_new_session=True
            )
            self._wait_ready(service, timeout)
            on_ready(service)

    def _wait_ready(self, service: Service, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert service.process is not None
        while not service.ready():
            if service.process.poll() is not None:
                raise RuntimeError(f"{service.name} exited with {service.process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service.name} not ready after {timeout:.0f}s")
            time.sleep(0.1)

    def dead(self) -> Service | None:
        """The first service whose process has exited, if any."""
        return next((s for s in self.services if s.process and s.process.poll() is not None), None)

    def stop(self, grace: float = 10.0) -> None:
        running = [s for s in reversed(self.services) if s.process and s.process.poll() is None]
        for service in running:
            _signal_group(service, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for service in running:
            assert service.process is not None
            try:
                service.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(service, signal.SIGKILL)
                service.process.wait()


def _signal_group(service: Service, sig: signal.Signals) -> None:
    assert service.process is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(service.process.pid, sig)
