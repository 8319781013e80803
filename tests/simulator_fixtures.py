"""Start the Anthropic API simulator as a subprocess and steer it through `/_sim/*`.

Used by the simulator's own tests and by any test or benchmark that needs a stand-in for
Claude: `sim = start_simulator(rpm=3, ttft_ms=10)`, point the SDK at `sim.url`, `sim.stop()`.
The `test_simulator_*` modules import the fixtures `sim`, `clean` and `client` defined here.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic.types import MessageParam

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SimProcess:
    """A running `python -m simulator`; `.url` is the SDK's `base_url`."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.log_path = log_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """Call a control endpoint (`/_sim/...`) and return its decoded JSON."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def stats(self) -> dict[str, Any]:
        return dict(self.control("GET", "/_sim/stats"))

    def reset(self, config: bool = True) -> None:
        """Zero stats, faults, caches, batches and buckets; by default restore startup config."""
        self.control("POST", "/_sim/reset", {"config": config})

    def configure(self, **patch: Any) -> dict[str, Any]:
        return dict(self.control("POST", "/_sim/config", patch))

    def fault(self, **spec: Any) -> list[dict[str, Any]]:
        return list(self.control("POST", "/_sim/faults", spec)["faults"])

    def healthy(self) -> bool:
        try:
            return bool(self.control("GET", "/_sim/health")["status"] == "ok")
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log_path.unlink(missing_ok=True)


def start_simulator(timeout: float = 20.0, **flags: Any) -> SimProcess:
    """Spawn the simulator on a free port with `--flag value` per keyword; wait until healthy."""
    port = int(flags.pop("port", 0)) or free_port()
    argv = [sys.executable, "-m", "simulator", "--port", str(port)]
    for name, value in flags.items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    handle, log_name = tempfile.mkstemp(prefix="simulator-", suffix=".log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    with os.fdopen(handle, "wb") as log_file:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    sim = SimProcess(proc, port, Path(log_name))
    deadline = time.monotonic() + timeout
    while not sim.healthy():
        if proc.poll() is not None or time.monotonic() > deadline:
            output = sim.log()
            sim.stop()
            raise RuntimeError(f"simulator did not start (exit {proc.poll()}):\n{output}")
        time.sleep(0.05)
    return sim


# --- the simulator's own tests, through the SDK ---------------------------------------------
# A test module imports the fixtures under their function names (`from tests.simulator_fixtures
# import sim_process as sim_process`, and so on) and asks for them as `sim`, `client` and `clean`
# (autouse: every test starts on a reset simulator).

MODEL = "claude-sonnet-5-5"
KEY = "sim-key"
HELLO: list[MessageParam] = [{"role": "user", "content": "How dry is the north paddock?"}]


@pytest.fixture(scope="module", name="sim")
def sim_process() -> Iterator[SimProcess]:
    """One simulator per test module, fast and with a key the SDK must send."""
    process = start_simulator(
        api_key=KEY, ttft_ms=5, tokens_per_second=2000, batch_seconds_per_request=0.02
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(autouse=True, name="clean")
def reset_sim(sim: SimProcess) -> None:
    """Every test starts on fresh counters, no faults and the startup config."""
    sim.reset()


@pytest.fixture(name="client")
def sdk_client(sim: SimProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=KEY, base_url=sim.url, max_retries=0) as sdk:
        yield sdk


def wait_for(check: Any, timeout: float = 5.0) -> Any:
    """Poll `check` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


# A small JSON Schema checker for the keywords the simulator promises to honour, so tests do
# not depend on `jsonschema` being installed. Returns a list of problems (empty = valid).
_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def schema_errors(instance: Any, schema: Any, root: Any = None, path: str = "$") -> list[str]:
    root = schema if root is None else root
    while isinstance(schema, dict) and "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#").split("/"):
            node = node[part] if part else node
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    if not isinstance(schema, dict):
        return []
    errors: list[str] = []
    for check in (_check_combinators, _check_type, _check_values, _check_object, _check_array):
        errors += check(instance, schema, root, path)
    return errors


def _is_type(instance: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(instance, int) and not isinstance(instance, bool)
    if kind == "number":
        return isinstance(instance, int | float) and not isinstance(instance, bool)
    return isinstance(instance, _TYPES[kind])


def _check_combinators(instance: Any, schema: dict[str, Any], root: Any, path: str) -> list[str]:
    errors: list[str] = []
    for sub in schema.get("allOf", []):
        errors += schema_errors(instance, sub, root, path)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            passing = sum(not schema_errors(instance, s, root, path) for s in schema[key])
            if passing == 0 or (key == "oneOf" and passing > 1):
                errors.append(f"{path}: {key} matched {passing}")
    return errors


def _check_type(instance: Any, schema: dict[str, Any], root: Any, path: str) -> list[str]:
    kinds = schema.get("type")
    if kinds is None:
        return []
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if any(_is_type(instance, k) for k in kinds):
        return []
    return [f"{path}: {instance!r} is not of type {kinds}"]


def _check_values(instance: Any, schema: dict[str, Any], root: Any, path: str) -> list[str]:
    errors: list[str] = []
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{path}: != const")
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{path}: {instance!r} not in enum")
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than minLength")
        if len(instance) > schema.get("maxLength", 1 << 30):
            errors.append(f"{path}: longer than maxLength")
    if isinstance(instance, int | float) and not isinstance(instance, bool):
        errors += _check_number(instance, schema, path)
    return errors


def _check_number(value: float, schema: dict[str, Any], path: str) -> list[str]:
    bad = [
        "minimum" in schema and value < schema["minimum"],
        "maximum" in schema and value > schema["maximum"],
        isinstance(schema.get("exclusiveMinimum"), int | float)
        and not isinstance(schema.get("exclusiveMinimum"), bool)
        and value <= schema["exclusiveMinimum"],
        isinstance(schema.get("exclusiveMaximum"), int | float)
        and not isinstance(schema.get("exclusiveMaximum"), bool)
        and value >= schema["exclusiveMaximum"],
        schema.get("exclusiveMinimum") is True and value <= schema.get("minimum", value - 1),
        schema.get("exclusiveMaximum") is True and value >= schema.get("maximum", value + 1),
        isinstance(schema.get("multipleOf"), int) and value % schema["multipleOf"] != 0,
    ]
    return [f"{path}: {value} violates numeric bounds"] if any(bad) else []


def _check_object(instance: Any, schema: dict[str, Any], root: Any, path: str) -> list[str]:
    if not isinstance(instance, dict):
        return []
    errors = [f"{path}: missing {k}" for k in schema.get("required", []) if k not in instance]
    properties = schema.get("properties", {})
    for key, value in instance.items():
        if key in properties:
            errors += schema_errors(value, properties[key], root, f"{path}.{key}")
        elif schema.get("additionalProperties") is False:
            errors.append(f"{path}: unexpected {key}")
    return errors


def _check_array(instance: Any, schema: dict[str, Any], root: Any, path: str) -> list[str]:
    if not isinstance(instance, list):
        return []
    errors: list[str] = []
    if len(instance) < schema.get("minItems", 0) or len(instance) > schema.get("maxItems", 1 << 30):
        errors.append(f"{path}: {len(instance)} items out of range")
    if schema.get("uniqueItems") and len({json.dumps(i, sort_keys=True) for i in instance}) < len(
        instance
    ):
        errors.append(f"{path}: items not unique")
    prefix = schema.get("prefixItems", [])
    for index, item in enumerate(instance):
        sub = prefix[index] if index < len(prefix) else schema.get("items", {})
        errors += schema_errors(item, sub, root, f"{path}[{index}]")
    return errors
