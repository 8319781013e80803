"""The Compose commands run here as local processes, checked without Docker.

Every Compose service's command (and the images' CMD and HEALTHCHECKs) runs with the service's
own environment, against a private redis-server with the ACL users Compose's Redis gets; only
hostnames, ports and the `/data` volume path are rewritten for loopback. Each comes up as its
health check expects, as its own Redis user, without a command Redis refused; Flower keeps
every path, /metrics included, behind basic auth; the API will not start without keys."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from shared.celery_app import POLL_UPSTREAM_BATCHES, create_celery
from shared.settings import load_settings
from tests.deploy_fixtures import (
    ROOT,
    compose_healthcheck,
    dockerfile_healthcheck,
    dockerfile_stages,
    interpolate,
    service,
)
from tests.procs import RedisServer, free_port, stop_process, wait_until

pytestmark = pytest.mark.integration

FLOWER_USER, FLOWER_PASSWORD = "ops", "test-flower-password"
REDIS_PASSWORD = "5f0c2a9e7b3d41c8a6e2f9b07d1c3e58"
# Not in Compose: an operator's user, here to read Redis' ACL log after the run.
REDIS_ADMIN_PASSWORD = "a3e81f06c9d24b7a8e5f1c0d2b9a7e64"
API_KEY = "ops:4b1e9c07d2a8f3e6c5b0a9d8e7f61234"
# What an operator puts in .env for a keyless run (DEPLOYMENT.md, "the simulator profile").
KEYLESS_ENV = {
    "ANTHROPIC_BASE_URL": "http://simulator:8900",
    "ANTHROPIC_API_KEY": "sk-ant-simulator",
    "FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{FLOWER_PASSWORD}",
    "WORKER_METRICS_PORT": "9100",
    "SIDECAR_API_KEYS": API_KEY,
    "REDIS_PASSWORD": REDIS_PASSWORD,
}
# Ports the services listen on inside their containers.
API_PORT, FLOWER_PORT, SIM_PORT, WORKER_METRICS_PORT = 8000, 5555, 8900, 9100


@dataclass
class Local:
    """The Compose network on loopback: where each service's host and ports really are."""

    redis_port: int
    tmp: Path
    ports: dict[int, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def workdir(self) -> Path:
        return self.tmp / "app"

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{self.ports[port]}"

    def rewrite(self, text: str) -> str:
        """`${...}` from .env; container names and ports -> loopback; the /data volume -> a
        temporary directory."""
        text = interpolate(text, KEYLESS_ENV)
        text = text.replace("0.0.0.0", "127.0.0.1")
        text = text.replace("@redis:6379/", f"@127.0.0.1:{self.redis_port}/")
        text = text.replace("redis-cli ", f"redis-cli -p {self.redis_port} ")
        text = text.replace("http://simulator:", "http://127.0.0.1:")
        for inside, outside in self.ports.items():
            text = re.sub(rf"(?<=:){inside}\b", str(outside), text)
        return text.replace("/data/", f"{self.data}/")

    def rewrite_value(self, value: str) -> str:
        """An environment value: a bare container port, or text with hosts and ports."""
        if value.isdigit() and int(value) in self.ports:
            return str(self.ports[int(value)])
        return self.rewrite(value)

    def argv(self, command: list[str]) -> list[str]:
        out: list[str] = []
        for arg in command:
            if out and out[-1] == "--port" and int(arg) in self.ports:
                arg = str(self.ports[int(arg)])
            elif arg.startswith("--port="):
                arg = f"--port={self.ports[int(arg.partition('=')[2])]}"
            out.append(self.rewrite(arg))
        return [executable(out[0]), *out[1:]]

    def env(self, name: str) -> dict[str, str]:
        """The service's environment: its env_file (.env with the keyless lines), then its
        `environment`, which Compose lets win."""
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("ANTHROPIC_", "SIDECAR_", "REDIS_", "CLAUDE_", "FLOWER_"))}
        svc = service(name)
        env_file = KEYLESS_ENV if svc.get("env_file") else {}
        declared = {**env_file, **(svc.get("environment") or {})}
        bindir = str(Path(sys.executable).parent)
        return {**base, **{k: self.rewrite_value(str(v)) for k, v in declared.items()},
                "PATH": bindir + os.pathsep + base.get("PATH", ""),
                "HOSTNAME": socket.gethostname(), "PYTHONUNBUFFERED": "1"}

    def start(self, name: str) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(self.argv(service(name)["command"]), env=self.env(name),
                                    cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def check(self, command: list[str], name: str) -> subprocess.CompletedProcess[str]:
        """Run a health check command the way the container runtime would."""
        argv = [self.rewrite(arg) for arg in command]
        return subprocess.run([executable(argv[0]), *argv[1:]], env=self.env(name),
                              cwd=self.workdir, capture_output=True, text=True, timeout=60)


def executable(name: str) -> str:
    if name in {"python", "python3"}:
        return sys.executable
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name) or name


def image_workdir(target: Path) -> None:
    """Lay out the worker image's WORKDIR: the files its final stage COPYs from the context."""
    target.mkdir(parents=True)
    for key, rest in dockerfile_stages("Dockerfile.worker")[-1]:
        if key == "COPY" and not rest.startswith("--"):
            source, dest = shlex.split(rest)
            (target / dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, target / dest)


def redis_with_compose_users(tmp: Path) -> RedisServer:
    """A private redis-server with the ACL file that Compose's Redis entrypoint writes (with an
    admin user added, for the checks)."""
    svc = service("redis")
    mounts = {target: source for source, target, *_ in (v.split(":") for v in svc["volumes"])}
    shell, script, acl = svc["entrypoint"][:3]
    command = svc["command"]
    assert command[command.index("--aclfile") + 1] == acl, "redis-server reads another file"
    env = {name: interpolate(str(value), KEYLESS_ENV) for name, value in svc["environment"].items()}
    local_acl = tmp / "users.acl"
    subprocess.run([shell, str(ROOT / mounts[script]), str(local_acl)], check=True,
                   env={**env, "REDIS_PASSWORD_ADMIN": REDIS_ADMIN_PASSWORD,
                        "PATH": os.environ["PATH"]})
    server = RedisServer()
    server.argv += ["--aclfile", str(local_acl)]
    return server.start()


def redis_admin(env: Local) -> redis.Redis:
    return redis.Redis(port=env.redis_port, username="admin", password=REDIS_ADMIN_PASSWORD)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    redis_server = redis_with_compose_users(tmp_path)
    env = Local(redis_server.port, tmp_path,
                {port: free_port()
                 for port in (API_PORT, FLOWER_PORT, SIM_PORT, WORKER_METRICS_PORT)})
    image_workdir(env.workdir)
    env.data.mkdir()
    try:
        yield env
    finally:
        for proc in reversed(env.procs.values()):
            stop_process(proc, grace=15)
        redis_server.stop()


def status(url: str, auth: tuple[str, str] | None = None) -> int:
    try:
        return httpx.get(url, auth=auth, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def alive(env: Local, name: str) -> None:
    proc = env.procs[name]
    assert proc.poll() is None, f"{name} exited {proc.returncode}:\n{env.log(name)[-3000:]}"


def wait_for(env: Local, name: str, check: Any, what: str, timeout: float = 60) -> None:
    wait_until(lambda: check() or env.procs[name].poll() is not None, timeout, what)
    alive(env, name)
    assert check(), what


def start_backend(env: Local) -> None:
    env.start("simulator")
    sim = env.url(SIM_PORT)
    wait_for(env, "simulator", lambda: status(sim + "/_sim/health") == 200, "simulator health")
    env.start("worker")
    wait_for(env, "worker", lambda: "ready." in env.log("worker"), "worker logs ready.")
    env.start("api")
    api = env.url(API_PORT)
    wait_for(env, "api", lambda: status(api + "/health") == 200, "api /health")
    wait_for(env, "api", lambda: status(api + "/ready") == 200, "api /ready with a worker")


def check_flower(env: Local) -> None:
    env.start("flower")
    url = env.url(FLOWER_PORT)
    wait_for(env, "flower", lambda: status(url + "/") == 401, "flower answering 401")
    good, bad = (FLOWER_USER, FLOWER_PASSWORD), (FLOWER_USER, "wrong")
    for path in ("/", "/metrics", "/healthcheck", "/api/workers"):
        assert status(url + path) == 401, f"flower {path} open without credentials"
        assert status(url + path, bad) == 401, f"flower {path} open with a wrong password"
        assert status(url + path, good) == 200, f"flower {path} refused its credentials"


def chat_through_the_stack(env: Local) -> None:
    """One job end to end (API, queue, worker, simulator, events), with the service key."""
    secret = API_KEY.partition(":")[2]
    answer = httpx.post(env.url(API_PORT) + "/api/chat", json={"message": "Hello"},
                        headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["response"]
    assert httpx.post(env.url(API_PORT) + "/api/chat", json={"message": "Hello"},
                      timeout=30).status_code == 401


@pytest.mark.timeout(300)
def test_compose_commands_run_without_docker(local: Local) -> None:
    start_backend(local)
    chat_through_the_stack(local)

    local.start("beat")
    time.sleep(6)
    alive(local, "beat")
    beat_log = local.log("beat")
    assert "Traceback" not in beat_log and "ERROR" not in beat_log, beat_log[-3000:]

    check_flower(local)

    healthchecks = {
        "api": dockerfile_healthcheck("Dockerfile.api"),
        "worker": dockerfile_healthcheck("Dockerfile.worker"),
        "flower": compose_healthcheck("flower"),
        "simulator": compose_healthcheck("simulator"),
        "redis": compose_healthcheck("redis"),
    }
    for name, command in healthchecks.items():
        result = local.check(command, name)
        assert result.returncode == 0, f"{name} health check failed: {result.stderr[-2000:]}"

    # Every component did all it had to as its own Redis user, and Redis refused it nothing
    # (beat sends its first task after 30 s: the users test sends one as beat does).
    users = {entry["user"] for entry in redis_admin(local).client_list()}
    assert {"api", "worker", "flower"} <= users, users
    assert redis_admin(local).acl_log() == []

    # Flower's --persistent state lands on the volume when it stops.
    stop_process(local.procs.pop("flower"), grace=15)
    assert list(local.data.glob("flower.db*")), "flower wrote no state to /data"
    assert list(local.data.glob("celerybeat-schedule*")), "beat wrote no schedule to /data"


def test_flower_refuses_to_start_without_credentials(local: Local) -> None:
    env = local.env("flower")
    argv = local.argv(service("flower")["command"])
    for credentials in ("", f"{FLOWER_USER}:change-me"):
        env["FLOWER_BASIC_AUTH"] = credentials
        result = subprocess.run(argv, env=env, cwd=local.workdir, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode != 0
        assert "FLOWER_BASIC_AUTH" in result.stdout + result.stderr


def test_redis_users_let_each_component_do_only_its_part(local: Local) -> None:
    urls = {name: local.env(name)["REDIS_URL"] for name in ("api", "worker", "beat", "flower")}
    for name, url in urls.items():
        assert url.startswith(f"redis://{name}:{REDIS_PASSWORD}@"), f"{name}: {url}"
    api = redis.Redis.from_url(urls["api"])
    api.set("sidecar:check", "1")
    for command in (api.flushall, api.info, lambda: api.keys("*"), lambda: api.config_get("*")):
        with pytest.raises(redis.exceptions.NoPermissionError):
            command()
    # beat publishes as Celery does (binding lookup, then the queue), and reads no job.
    redis_admin(local).acl_log_reset()
    beat = create_celery(load_settings(redis_url=urls["beat"]))
    beat.send_task(POLL_UPSTREAM_BATCHES, queue="batch")
    beat.close()
    assert redis_admin(local).llen("batch") == 1
    assert redis_admin(local).acl_log() == []
    with pytest.raises(redis.exceptions.NoPermissionError):
        redis.Redis.from_url(urls["beat"]).get("sidecar:check")
    flower = redis.Redis.from_url(urls["flower"])
    assert flower.llen("interactive") == 0
    with pytest.raises(redis.exceptions.NoPermissionError):
        flower.get("sidecar:check")
    probe = redis.Redis(port=local.redis_port, username="probe", password="any")
    assert probe.ping()
    with pytest.raises(redis.exceptions.NoPermissionError):
        probe.get("sidecar:check")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=local.redis_port).get("sidecar:check")
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=local.redis_port, username="api", password="wrong").ping()


def test_api_refuses_to_start_without_keys_and_holds_no_claude_key(local: Local) -> None:
    env = local.env("api")
    assert env["SIDECAR_AUTH"] == "on" and env["ANTHROPIC_API_KEY"] == ""
    assert local.env("worker")["ANTHROPIC_API_KEY"] == KEYLESS_ENV["ANTHROPIC_API_KEY"]
    argv = local.argv(service("api")["command"])
    env["SIDECAR_API_KEYS"] = ""
    result = subprocess.run(argv, env=env, cwd=local.workdir, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "SIDECAR_API_KEYS" in result.stdout + result.stderr
