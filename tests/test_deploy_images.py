"""The images and the Compose file, read without Docker: the Dockerfiles are multi-stage, end as
a non-root user and run the Compose command; they install exactly the hashed lock files, which
pin every dependency pyproject.toml names; Compose hardens every service; .dockerignore keeps
what the images copy and drops secrets."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy_fixtures import (
    ROOT,
    compose_dotenv,
    compose_file,
    dockerfile_cmd,
    dockerfile_healthcheck,
    dockerfile_stages,
    final,
    lock_entries,
    render_compose,
    service,
)

DOCKERFILES = ("Dockerfile.api", "Dockerfile.worker")
LOCKS = {"requirements.lock": ("project", "dependencies"),
         "requirements-build.lock": ("build-system", "requires")}

pytestmark = pytest.mark.integration


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


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_installs_only_the_hashed_lock_and_the_package_without_deps(
        dockerfile: str) -> None:
    builder = dockerfile_stages(dockerfile)[0]
    copied = " ".join(rest for key, rest in builder if key == "COPY")
    assert "requirements.lock" in copied and "requirements-build.lock" in copied
    installs = [command.strip() for key, rest in builder if key == "RUN"
                for command in rest.split("&&") if re.search(r"\bpip (install|wheel)\b", command)]
    from_lock = [c for c in installs if "-r requirements.lock" in c]
    assert from_lock and all("--require-hashes" in c and "--no-deps" in c for c in from_lock)
    for command in installs:
        # Every pip command either checks hashes or installs nothing but what it is given.
        assert "--no-deps" in command, f"{dockerfile}: {command!r} may resolve dependencies"
        if "-r " in command:
            assert "--require-hashes" in command, f"{dockerfile}: {command!r} skips hashes"
        if " wheel " in f" {command} ":
            assert "--no-build-isolation" in command, (
                f"{dockerfile}: {command!r} would fetch an unpinned build backend")
    assert any(c.endswith(".whl") or c.endswith(" .") for c in installs if "-r " not in c), (
        f"{dockerfile}: the package itself is not installed")
    text = (ROOT / dockerfile).read_text()
    assert "pyproject.toml', 'rb'" not in text, "dependencies must come from the lock"


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_pins_every_package_to_one_version_with_hashes(lock: str) -> None:
    entries = lock_entries(lock)
    assert len(entries) >= 3
    names = []
    for entry in entries:
        assert not entry.options, f"{lock}: options {entry.options} (no indexes, no includes)"
        requirement = Requirement(entry.spec)
        assert not requirement.url, f"{lock}: {entry.spec} comes from a URL"
        (pin,) = requirement.specifier
        assert pin.operator == "==" and "*" not in pin.version, f"{lock}: {entry.spec} not pinned"
        assert entry.hashes, f"{lock}: {requirement.name} has no hash"
        for digest in entry.hashes:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{lock}: {digest}"
        names.append(canonicalize_name(requirement.name))
    assert len(names) == len(set(names)), f"{lock}: a package is pinned twice"


@pytest.mark.parametrize(("lock", "table"), LOCKS.items())
def test_lock_pins_a_version_of_every_dependency_pyproject_names(
        lock: str, table: tuple[str, str]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = pyproject[table[0]][table[1]]
    pinned = {}
    for entry in lock_entries(lock):
        requirement = Requirement(entry.spec)
        pinned[canonicalize_name(requirement.name)] = next(iter(requirement.specifier)).version
    for line in wanted:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{lock} has no {name}: run bash scripts/lock.sh"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {name}=={pinned[name]}, outside {requirement.specifier}: "
            "run bash scripts/lock.sh")
    if table == ("project", "dependencies"):
        assert "pyjwt" in pinned


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


@pytest.mark.parametrize("required", ["SIDECAR_API_KEYS", "REDIS_PASSWORD"])
def test_compose_refuses_to_start_without_keys_or_a_redis_password(
        tmp_path: Path, required: str) -> None:
    dotenv = compose_dotenv()
    assert render_compose(tmp_path / "complete", dotenv).returncode == 0
    del dotenv[required]
    result = render_compose(tmp_path / "missing", dotenv)
    assert result.returncode != 0, f"Compose starts without {required}"
    assert required in result.stderr


def test_compose_gives_claude_only_to_workers_and_each_component_its_redis_user(
        tmp_path: Path) -> None:
    dotenv = compose_dotenv()
    rendered = render_compose(tmp_path, dotenv)
    assert rendered.returncode == 0, rendered.stderr
    services = json.loads(rendered.stdout)["services"]
    api = services["api"]["environment"]
    assert api["SIDECAR_AUTH"] == "on" and api["SIDECAR_API_KEYS"] == dotenv["SIDECAR_API_KEYS"]
    for name in ("api", "beat", "flower"):
        assert not services[name]["environment"].get("ANTHROPIC_API_KEY"), name
    assert services["worker"]["environment"]["ANTHROPIC_API_KEY"] == "sk-ant-check"
    password = dotenv["REDIS_PASSWORD"]
    for name in ("api", "worker", "beat", "flower"):
        url = services[name]["environment"]["REDIS_URL"]
        assert url == f"redis://{name}:{password}@redis:6379/0", name
    redis = services["redis"]
    assert redis["environment"]["REDIS_PASSWORD"] == password
    assert "--aclfile" in redis["command"]
    assert "PONG" in " ".join(redis["healthcheck"]["test"]), "redis-cli exits 0 on NOAUTH"
    # The API listens on the host's loopback unless the operator says otherwise.
    assert [port["host_ip"] for port in services["api"]["ports"]] == ["127.0.0.1"]


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
    for dockerfile in DOCKERFILES:
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
