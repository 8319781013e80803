"""Reading the deployment files (docker-compose.yml, the Dockerfiles, the lock files,
DEPLOYMENT.md) for the `test_deploy_*` modules, which are skipped where PyYAML is not
installed."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent


def compose_file() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def service(name: str) -> dict[str, Any]:
    return compose_file()["services"][name]


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}` (and `$$`), from `env`."""
    def value(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2) or "", match.group(3) or ""
        found = env.get(name, "")
        if op.endswith("?") and not found:
            raise KeyError(f"{name}: {arg}")
        return found or (arg if op.endswith("-") else "")

    text = re.sub(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}", value, text)
    return text.replace("$$", "$")


def compose_command() -> list[str]:
    """`docker compose` or `docker-compose` (the deploy-check extra installs the latter)."""
    for candidate in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(candidate[0]) and subprocess.run(
                [*candidate, "version"], capture_output=True, timeout=30).returncode == 0:
            return candidate
    pytest.skip("Docker Compose is not installed (pip install -e '.[deploy-check]')")


def render_compose(project: Path, dotenv: dict[str, str],
                   ) -> subprocess.CompletedProcess[str]:
    """`docker compose config` of docker-compose.yml with `dotenv` as the project's .env (in a
    directory of its own, so a developer's .env is never read)."""
    project.mkdir(parents=True, exist_ok=True)
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in dotenv.items()))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SIDECAR_", "REDIS_", "ANTHROPIC_", "COMPOSE_"))}
    return subprocess.run([*compose_command(), "-f", str(ROOT / "docker-compose.yml"),
                           "--project-directory", str(project), "config", "--format", "json"],
                          capture_output=True, text=True, env=env, timeout=60)


def compose_dotenv() -> dict[str, str]:
    """The variables Compose requires, with throwaway values, and a Claude key."""
    return {"SIDECAR_API_KEYS": f"check:{secrets.token_hex(32)}",
            "REDIS_PASSWORD": secrets.token_hex(32), "ANTHROPIC_API_KEY": "sk-ant-check"}


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


@dataclass(frozen=True)
class Locked:
    """One requirement of a lock file: `name==version ; marker --hash=sha256:...`."""

    spec: str
    hashes: tuple[str, ...]
    options: tuple[str, ...]


def lock_entries(name: str) -> list[Locked]:
    """The requirements of a pip requirements file, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / name).read_text())
    entries = []
    for line in text.splitlines():
        line = line.partition(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        options = tuple(w for w in words if w.startswith("-") and not w.startswith("--hash="))
        hashes = tuple(w.removeprefix("--hash=") for w in words if w.startswith("--hash="))
        spec = " ".join(w for w in words if not w.startswith("-"))
        entries.append(Locked(spec, hashes, options))
    return entries
