"""The bench's Redis: one redis-server with AOF (restarted in place), or a Sentinel group — a
master, a replica and three sentinels — where a restart is the master killed and a failover."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import redis

from tests.procs import free_port, port_open, stop_process, wait_until

MASTER_NAME = "sidecar-chaos"


def appendfsync() -> str:
    """The AOF's fsync policy: `everysec` (what deploy/ runs: a crash may lose the last second
    of writes) unless `CHAOS_APPENDFSYNC` says otherwise (`always`: nothing acknowledged is
    lost, to tell what the lost second costs)."""
    return os.environ.get("CHAOS_APPENDFSYNC", "everysec")


class RedisProcess:
    """redis-server with `--appendonly yes` (`--appendfsync everysec`, see `appendfsync`) in its
    own folder; stopped and started again on the same port and folder, so it comes back from its
    AOF."""

    def __init__(self, root: Path, replica_of: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.port = free_port()
        self.dir = root / f"redis-{self.port}"
        self.dir.mkdir(parents=True)
        self.replica_of = replica_of
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--save", "", "--appendonly", "yes",
                "--appendfsync", appendfsync(), "--logfile", str(self.dir / "redis.log")]
        if self.replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        return argv

    def start(self) -> RedisProcess:
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_until(lambda: port_open(self.port), 20, f"redis-server :{self.port} listening")
        wait_until(self._loaded, 60, f"redis-server :{self.port} loaded its AOF")
        return self

    def _loaded(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.exceptions.BusyLoadingError:
            return False
        except redis.exceptions.ConnectionError:
            return False

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (an orderly shutdown that flushes the AOF) or SIGKILL (up to a second of
        `everysec` writes lost)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if kill:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        else:
            stop_process(self.proc, grace=10)
        wait_until(lambda: not port_open(self.port), 10, f"redis-server :{self.port} stopped")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class SentinelProcess:
    """One sentinel watching MASTER_NAME (quorum 2, down after 2 s)."""

    def __init__(self, root: Path, master_port: int) -> None:
        self.port = free_port()
        self.dir = root / f"sentinel-{self.port}"
        self.dir.mkdir(parents=True)
        self.conf = self.dir / "sentinel.conf"
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"logfile {self.dir / 'sentinel.log'}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} 2000\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SentinelProcess:
        binary = shutil.which("redis-server") or "redis-server"
        self.proc = subprocess.Popen([binary, str(self.conf), "--sentinel"],
                                     stdout=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: port_open(self.port), 20, f"sentinel :{self.port} listening")
        return self

    def master_port(self) -> int | None:
        try:
            with redis.Redis(port=self.port, socket_timeout=1, decode_responses=True) as client:
                addr = client.execute_command("SENTINEL", "get-master-addr-by-name", MASTER_NAME)
        except redis.exceptions.RedisError:
            return None
        return int(addr[1]) if addr else None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=5)
