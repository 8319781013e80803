"""`sidecar up` as a new user runs it: Redis and the simulator started because nothing answers,
then the API and a worker; a chat works; SIGTERM takes everything down."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.procs import free_port, port_open, stop_process, wait_until

pytestmark = pytest.mark.integration


def test_sidecar_up_starts_and_stops_the_stack(tmp_path: Path) -> None:
    redis_port, api_port, sim_port, flower_port = free_port(), free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANTHROPIC_", "SIDECAR_", "REDIS_", "CLAUDE_"))}
    env.update(REDIS_URL=f"redis://127.0.0.1:{redis_port}/0", SERVER_PORT=str(api_port),
               SIMULATOR_PORT=str(sim_port), FLOWER_PORT=str(flower_port),
               FLOWER_BASIC_AUTH="ops:s3cret-pass", WORKER_METRICS_PORT="0", HOME=str(tmp_path))
    sidecar = shutil.which("sidecar") or str(Path(sys.executable).with_name("sidecar"))
    log = (tmp_path / "up.log").open("wb")
    proc = subprocess.Popen([sidecar, "up"], env=env, cwd=tmp_path, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{api_port}"
    try:
        def ready() -> bool:
            try:
                return httpx.get(url + "/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return proc.poll() is not None

        wait_until(ready, 60, "stack ready")
        assert proc.poll() is None, (tmp_path / "up.log").read_text()
        assert port_open(redis_port) and port_open(sim_port)
        flower = f"http://127.0.0.1:{flower_port}"
        wait_until(lambda: port_open(flower_port), 30, "flower up")
        assert httpx.get(flower + "/metrics").status_code == 401
        assert httpx.get(flower + "/healthcheck", auth=("ops", "s3cret-pass")).status_code == 200
        chat = subprocess.run([sidecar, "chat", "Is it dry?", "--url", url, "--max-tokens", "12"],
                              env=env, capture_output=True, text=True, timeout=60)
        assert chat.returncode == 0, chat.stderr
        assert chat.stdout.strip()
        assert "succeeded" in chat.stderr
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        assert proc.returncode is not None
        for port in (redis_port, sim_port, api_port, flower_port):
            wait_until(lambda p=port: not port_open(p), 10, f"port {port} closed")
    finally:
        stop_process(proc)
        log.close()
