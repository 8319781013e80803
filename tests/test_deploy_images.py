"""The images and the Compose file, read without Docker: the Dockerfiles are multi-stage, end as
a non-root user and run the Compose command; Compose hardens every service; .dockerignore keeps
what the images copy and drops secrets."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.deploy_fixtures import (
    ROOT,
    compose_file,
    dockerfile_cmd,
    dockerfile_healthcheck,
    dockerfile_stages,
    final,
    service,
)

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
