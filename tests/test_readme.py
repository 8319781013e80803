"""The README's Python snippets, run as a user would paste them (against the test stack and the
simulator), so the documented usage cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import Stack

pytestmark = pytest.mark.integration
README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def runnable(code: str, url: str) -> str:
    code = code.replace("http://localhost:8000", url)
    if "await " in code or "async with" in code:  # top-level await, as in a notebook
        code = "import asyncio\n\nasync def main():\n" + textwrap.indent(code, "    ") + \
            "\n\nasyncio.run(main())\n"
    return code


def test_readme_has_python_snippets() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_python_snippet_runs(stack: Stack, index: int) -> None:
    env = {**stack.env, "ANTHROPIC_BASE_URL": stack.sim_url, "ANTHROPIC_API_KEY": "sk-ant-test"}
    run = subprocess.run([sys.executable, "-c", runnable(BLOCKS[index], stack.url)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip()
