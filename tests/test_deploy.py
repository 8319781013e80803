"""The deployment files describe processes that work, checked without Docker or a cluster.

- Every Compose service's command (and the images' CMD and HEALTHCHECKs) runs here as a local
  process with the service's own environment, against a private redis-server; only hostnames,
  ports and the `/data` volume path are rewritten for loopback. Each comes up as its health check
  expects, and Flower keeps every path, /metrics included, behind basic auth.
- The Dockerfiles end as a non-root user, and their CMD is the Compose command.
- The kustomize output is consistent: the worker's ScaledObject targets the worker Deployment,
  beat cannot overlap, the alerts' runbook links resolve in DEPLOYMENT.md.
"""

from __future__ import annotations

import json
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

from tests.procs import RedisServer, free_port, stop_process, wait_until

yaml = pytest.importorskip("yaml")

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
FLOWER_USER, FLOWER_PASSWORD = "ops", "test-flower-password"
# What an operator puts in .env for a keyless run (DEPLOYMENT.md, "the simulator profile").
KEYLESS_ENV = {
    "ANTHROPIC_BASE_URL": "http://simulator:8900",
    "ANTHROPIC_API_KEY": "sk-ant-simulator",
    "FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{FLOWER_PASSWORD}",
    "WORKER_METRICS_PORT": "9100",
}
# Ports the services listen on inside their containers.
API_PORT, FLOWER_PORT, SIM_PORT, WORKER_METRICS_PORT = 8000, 5555, 8900, 9100


# --- reading the files -------------------------------------------------------------------------


def compose_file() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def service(name: str) -> dict[str, Any]:
    return compose_file()["services"][name]


def dockerfile_stages(name: str) -> list[list[tuple[str, str]]]:
    """(INSTRUCTION, arguments) per build stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / name).read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword.upper(), " ".join(rest.split())))
    return stages


def final(name: str, keyword: str) -> str:
    """The last value of an instruction in the final stage."""
    values = [rest for key, rest in dockerfile_stages(name)[-1] if key == keyword]
    assert values, f"{name}: no {keyword} in the final stage"
    return values[-1]


def dockerfile_cmd(name: str) -> list[str]:
    return list(json.loads(final(name, "CMD")))


def dockerfile_healthcheck(name: str) -> list[str]:
    """The HEALTHCHECK's command (exec form), without its options."""
    _, _, command = final(name, "HEALTHCHECK").partition(" CMD ")
    return list(json.loads(command))


def compose_healthcheck(name: str) -> list[str]:
    test = service(name)["healthcheck"]["test"]
    assert test[0] in {"CMD", "CMD-SHELL"}, test
    return list(test[1:]) if test[0] == "CMD" else ["sh", "-c", test[1]]


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors."""
    found = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", title)))
    return found


# --- static checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "dockerfile"), [("api", "Dockerfile.api"),
                                                  ("worker", "Dockerfile.worker")])
def test_dockerfile_is_multistage_non_root_and_runs_the_compose_command(
        name: str, dockerfile: str) -> None:
    stages = dockerfile_stages(dockerfile)
    assert len(stages) >= 2, "multi-stage: a builder and a final stage"
    user = final(dockerfile, "USER").split(":")[0]
    assert user.isdigit() and int(user) != 0, f"final USER {user!r} must be a non-root uid"
    final_stage = " ".join(rest for _, rest in stages[-1])
    assert "apt-get install" not in final_stage and "gcc" not in final_stage
    assert "--from=builder" in final_stage
    assert final(dockerfile, "EXPOSE")
    assert dockerfile_healthcheck(dockerfile)
    svc = service(name)
    assert svc["build"]["dockerfile"] == dockerfile
    assert svc.get("command", dockerfile_cmd(dockerfile)) == dockerfile_cmd(dockerfile)


def test_compose_services_share_the_images_and_harden_them() -> None:
    services = compose_file()["services"]
    assert {"redis", "api", "worker", "beat", "flower", "simulator"} <= services.keys()
    for name in ("beat", "flower"):
        assert services[name]["build"]["dockerfile"] == "Dockerfile.worker"
    assert services["simulator"]["build"]["dockerfile"] == "Dockerfile.api"
    assert services["simulator"]["profiles"] == ["simulator"]
    assert "--appendonly" in services["redis"]["command"]
    for name, svc in services.items():
        assert svc["restart"] == "unless-stopped", name
        if name != "redis":
            assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], name
        if name not in {"redis", "simulator"}:
            assert svc["depends_on"]["redis"]["condition"] == "service_healthy", name
    assert services["worker"]["stop_grace_period"] == "660s"
    env_file = services["api"]["env_file"][0]
    assert env_file == {"path": ".env", "required": False}


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) per .dockerignore line, as Docker's pattern matcher reads them."""
    patterns = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern, regex, i = line.lstrip("!").strip("/"), "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            else:
                regex += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
                i += 1
        patterns.append((exception, re.compile(regex)))
    return patterns


def ignored(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """A pattern applies to a path or any folder above it; the last one that applies wins."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    verdict = False
    for exception, regex in patterns:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            verdict = not exception
    return verdict


def test_dockerignore_keeps_what_the_images_copy_and_drops_secrets() -> None:
    patterns = dockerignore_patterns()
    for dockerfile in ("Dockerfile.api", "Dockerfile.worker"):
        for stage in dockerfile_stages(dockerfile):
            for key, rest in stage:
                if key != "COPY" or rest.startswith("--from"):
                    continue
                for source in shlex.split(rest)[:-1]:
                    files = [ROOT / source] if (ROOT / source).is_file() else [
                        f for f in (ROOT / source).rglob("*.py") if "__pycache__" not in f.parts]
                    assert files, f"{dockerfile}: COPY {source} copies nothing"
                    for file in files:
                        relative = file.relative_to(ROOT).as_posix()
                        assert not ignored(relative, patterns), f"{relative} is .dockerignored"
    for secret in (".env", ".git/config", "tests/conftest.py", "bench/cache.py",
                   "api/__pycache__/main.cpython-312.pyc", "deploy/base/secret.example.yaml"):
        assert ignored(secret, patterns), f"{secret} would be sent to the builder"


# --- the Compose commands, run as local processes ----------------------------------------------


@dataclass
class Local:
    """The Compose network on loopback: where each service's host and ports really are."""

    redis_url: str
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
        """Container names and ports -> loopback; the /data volume -> a temporary directory."""
        text = text.replace("0.0.0.0", "127.0.0.1")
        text = text.replace("redis://redis:6379/0", self.redis_url)
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


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    redis_server = RedisServer().start()
    env = Local(redis_server.url, tmp_path,
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


@pytest.mark.timeout(300)
def test_compose_commands_run_without_docker(local: Local) -> None:
    start_backend(local)

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
        "redis": None,
    }
    for name, command in healthchecks.items():
        if command is not None:
            result = local.check(command, name)
            assert result.returncode == 0, f"{name} health check failed: {result.stderr[-2000:]}"

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


# --- kustomize ---------------------------------------------------------------------------------


def render(directory: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (pip install -e '.[deploy-check]')")
    out = subprocess.run([kubectl, "kustomize", str(ROOT / directory)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [obj for obj in yaml.safe_load_all(out.stdout) if obj]


def find(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} objects"
    return matches[0]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


@pytest.mark.parametrize("directory", ["deploy/base", "deploy/overlays/prod"])
def test_kustomize_scales_the_worker_deployment_on_queued_and_running_jobs(
        directory: str) -> None:
    objs = render(directory)
    scaled = find(objs, "ScaledObject", "sidecar-worker")
    target = scaled["spec"]["scaleTargetRef"]
    worker = find(objs, target.get("kind", "Deployment"), target["name"])
    assert worker["metadata"]["name"] == "sidecar-worker"
    assert "replicas" not in worker["spec"], "KEDA owns the worker count"
    assert scaled["spec"]["minReplicaCount"] >= 1
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    for metric in ("sidecar_queue_depth", "sidecar_calls_in_flight",
                   "sidecar_jobs_waiting_capacity"):
        assert metric in trigger["metadata"]["query"]
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 660


@pytest.mark.parametrize("directory", ["deploy/base", "deploy/overlays/prod"])
def test_kustomize_runs_the_compose_commands_once_each(directory: str) -> None:
    objs = render(directory)
    beat = find(objs, "Deployment", "sidecar-beat")
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
    assert container(beat)["command"] == service("beat")["command"]
    flower = find(objs, "Deployment", "sidecar-flower")
    assert container(flower)["command"] == service("flower")["command"]
    # The api and worker Deployments run the images' CMD (no command of their own).
    for name in ("sidecar-api", "sidecar-worker"):
        assert "command" not in container(find(objs, "Deployment", name))
    api = container(find(objs, "Deployment", "sidecar-api"))
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    worker_probe = container(find(objs, "Deployment", "sidecar-worker"))["livenessProbe"]
    assert "inspect ping" in " ".join(worker_probe["exec"]["command"])


def test_alert_runbooks_resolve_in_deployment_md() -> None:
    objs = render("deploy/base")
    rules = find(objs, "PrometheusRule", "sidecar")["spec"]["groups"][0]["rules"]
    documented = anchors((ROOT / "DEPLOYMENT.md").read_text())
    for rule in rules:
        anchor = rule["annotations"]["runbook_url"].partition("#")[2]
        assert anchor in documented, f"{rule['alert']}: no #{anchor} in DEPLOYMENT.md"
    assert {r["alert"] for r in rules} >= {"SidecarHighErrorRate", "SidecarQueueBacklog",
                                           "SidecarUpstream429s", "SidecarNoWorkers"}
