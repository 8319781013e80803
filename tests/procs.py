"""Helpers that start and stop the real processes integration tests talk to."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not met within {timeout}s")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after `grace` seconds."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


class RedisServer:
    """A private redis-server on a free port, so tests never touch the machine's Redis."""

    def __init__(self, port: int | None = None, appendonly: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (.ci/run installs it)")
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="sidecar-redis-"))
        self.argv = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
            "--save", "", "--appendonly", "yes" if appendonly else "no",
            "--appendfsync", "always",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.DEVNULL, start_new_session=True
        )
        wait_until(lambda: port_open(self.port), 10, "redis-server listening")
        return self

    def stop(self, keep_data: bool = False) -> None:
        """Stop the server; with `keep_data` its files stay, for a restart on the same port."""
        if self.proc is not None:
            stop_process(self.proc, grace=5)
            wait_until(lambda: not port_open(self.port), 10, "redis-server stopped")
        if not keep_data:
            shutil.rmtree(self.dir, ignore_errors=True)
