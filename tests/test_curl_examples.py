"""CURL_EXAMPLES.md is executed, not just read: every ```bash block runs with the real curl
against the running stack, and its output must have the shape of the answer the page shows
right after it — status line and headers (```http), JSON keys (```json), an event stream that
ends with `done` (```text starting with `id:`), or Prometheus families (```text with `# TYPE`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sidecar.sse import parse_lines
from tests.conftest import Stack

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parent.parent / "CURL_EXAMPLES.md"
DOC_URL = "http://localhost:8000"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# Values the page promises exactly; every other value only has to be of the same JSON type.
LITERAL_KEYS = frozenset({"type", "field", "cached", "priority"})
EVENTS = frozenset({"status", "token", "reset", "done"})


@dataclass(frozen=True)
class Example:
    line: int
    command: str
    kind: str  # the fence language of the answer shown after the command ("" if none)
    answer: str

    @property
    def name(self) -> str:
        method = re.search(r"-X (\w+)", self.command)
        path = re.search(r"localhost:8000(/[^\s'?]*)", self.command)
        return f"L{self.line}-{method[1] if method else 'GET'}-{path[1] if path else '?'}"


def load_examples() -> list[Example]:
    text = DOC.read_text()
    blocks = [(m[1], m[2], text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]
    examples = []
    for index, (language, body, line) in enumerate(blocks):
        if language != "bash":
            continue
        after = blocks[index + 1] if index + 1 < len(blocks) else ("bash", "", 0)
        kind, answer = ("", "") if after[0] == "bash" else (after[0], after[1])
        examples.append(Example(line, body.strip(), kind, answer))
    return examples


EXAMPLES = load_examples()


@pytest.fixture(scope="module")
def curl() -> str:
    binary = shutil.which("curl")
    if binary is None:
        pytest.fail("curl is not installed (.ci/run should install it)")
    return binary


@pytest.fixture(scope="module")
def job_id(stack: Stack) -> str:
    """The page's `$JOB_ID`: a finished job, so replaying, reading and cancelling it give the
    same answers whatever order the commands run in."""
    body = {"type": "chat", "input": {"message": "Will the bores hold up until March?"},
            "max_tokens": 30, "cache": False}
    job = httpx.post(stack.url + "/api/jobs", json=body, timeout=10).json()
    deadline = time.monotonic() + 30
    while httpx.get(f"{stack.url}/api/jobs/{job['id']}", timeout=10).json()["status"] != \
            "succeeded":
        assert time.monotonic() < deadline, "the $JOB_ID job did not finish"
        time.sleep(0.1)
    return str(job["id"])


def run(example: Example, url: str, job_id: str) -> str:
    command = example.command.replace(DOC_URL, url)
    env = {**os.environ, "JOB_ID": job_id, "NO_PROXY": "127.0.0.1,localhost",
           "no_proxy": "127.0.0.1,localhost"}
    done = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, f"line {example.line}: exit {done.returncode}\n{done.stderr}"
    return done.stdout


def assert_shape(documented: Any, actual: Any, path: str = "$") -> None:
    """Every key the page shows is there, recursively, with a value of the same JSON type;
    a documented number may be null (figures not known yet), a documented null anything."""
    if isinstance(documented, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        missing = set(documented) - set(actual)
        assert not missing, f"{path}: missing {sorted(missing)} in {actual!r}"
        for key, value in documented.items():
            if key in LITERAL_KEYS and not isinstance(value, dict | list):
                assert actual[key] == value, f"{path}.{key}: {actual[key]!r} != {value!r}"
            assert_shape(value, actual[key], f"{path}.{key}")
    elif isinstance(documented, list):
        assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
        if documented and actual:
            assert_shape(documented[0], actual[0], f"{path}[0]")
    elif isinstance(documented, bool):
        assert isinstance(actual, bool), f"{path}: expected a boolean, got {actual!r}"
    elif isinstance(documented, int | float):
        assert actual is None or (isinstance(actual, int | float) and not isinstance(actual, bool)
                                  ), f"{path}: expected a number, got {actual!r}"
    elif isinstance(documented, str):
        assert isinstance(actual, str), f"{path}: expected a string, got {actual!r}"


def check_http(answer: str, output: str) -> None:
    documented_head, _, documented_body = answer.partition("\n\n")
    head, _, body = output.replace("\r\n", "\n").partition("\n\n")
    status_line, *header_lines = documented_head.splitlines()
    actual_status, *actual_headers = head.splitlines()
    assert actual_status.split()[1] == status_line.split()[1], actual_status
    names = {h.split(":", 1)[0].lower() for h in actual_headers}
    for header in header_lines:
        assert header.split(":", 1)[0].lower() in names, f"no {header!r} in\n{head}"
    if documented_body.strip():
        assert_shape(json.loads(documented_body), json.loads(body))


def check_events(command: str, output: str) -> None:
    """Ids run on without a gap from the one after `Last-Event-ID`; the job succeeded."""
    resumed = re.search(r"Last-Event-ID: (\d+)", command)
    events = list(parse_lines(iter(output.splitlines())))
    assert events and events[-1].event == "done", output[-500:]
    first = int(resumed[1]) + 1 if resumed else 1
    assert [e.id for e in events] == list(range(first, first + len(events)))
    assert {e.event for e in events} <= EVENTS
    assert events[-1].data["status"] == "succeeded", events[-1].data


def check_metrics(answer: str, output: str) -> None:
    families = [line for line in answer.splitlines() if line.startswith("# TYPE")]
    assert families
    for family in families:
        assert family in output.splitlines(), f"{family!r} not in /metrics"


def check(example: Example, output: str) -> None:
    if example.kind == "http":
        check_http(example.answer, output)
    elif example.kind == "json":
        assert_shape(json.loads(example.answer), json.loads(output))
    elif example.kind == "text" and example.answer.startswith(("id:", "event:")):
        check_events(example.command, output)
    elif example.kind == "text" and "# TYPE" in example.answer:
        check_metrics(example.answer, output)
    else:
        pytest.fail(f"line {example.line}: no answer shown after the command, or one the test "
                    "cannot check (```json, ```http, or ```text with SSE or # TYPE lines)")


def test_the_page_has_the_examples_it_promises() -> None:
    commands = " ".join(e.command for e in EXAMPLES)
    for needed in ("/api/chat/stream", "Last-Event-ID: 2", "-X DELETE", "idempotency_key",
                   '"cache": false', "/health", "/ready", "/metrics", "/api/limits",
                   '"system"', '"history"', '"model"'):
        assert needed in commands, needed
    statuses = {e.answer.split()[1] for e in EXAMPLES if e.kind == "http"}
    assert {"400", "404", "422"} <= statuses


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_each_block_is_one_curl_command(example: Example) -> None:
    assert example.command.startswith("curl ") and example.command.count("curl ") == 1, \
        f"line {example.line}: one curl command per block"
    for line in example.command.splitlines():
        assert "localhost" not in line or DOC_URL in line, f"line {example.line}: {line}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_command_answers_as_documented(example: Example, stack: Stack, curl: str,
                                       job_id: str) -> None:
    check(example, run(example, stack.url, job_id))
