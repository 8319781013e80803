"""The two Redis set-ups the bench runs against, behind one interface: where the services
connect, how Redis is restarted, and a client for the current master (for the audit)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

import redis

from bench.chaos.redis_procs import MASTER_NAME, RedisProcess, SentinelProcess
from tests.procs import wait_until


class RedisSetup(Protocol):
    variant: str

    def start(self) -> None: ...
    def env(self) -> dict[str, str]: ...
    def restart(self, kill: bool) -> dict[str, Any]: ...
    def master(self) -> redis.Redis: ...
    def stop(self) -> None: ...


class AofSetup:
    """One redis-server with AOF; a restart stops it and starts it again in place."""

    variant = "aof"

    def __init__(self, root: Path) -> None:
        self.server = RedisProcess(root)

    def start(self) -> None:
        self.server.start()

    def env(self) -> dict[str, str]:
        return {"REDIS_URL": self.server.url}

    def restart(self, kill: bool) -> dict[str, Any]:
        started = time.monotonic()
        self.server.stop(kill=kill)
        self.server.start()
        return {"signal": "SIGKILL" if kill else "SIGTERM",
                "down_s": round(time.monotonic() - started, 2)}

    def master(self) -> redis.Redis:
        return redis.Redis(port=self.server.port, decode_responses=False, socket_timeout=30)

    def stop(self) -> None:
        self.server.stop(kill=True)


class SentinelSetup:
    """A master, one replica and three sentinels; a restart SIGKILLs the current master, waits
    for the sentinels to promote the replica, and brings the old master back as a replica."""

    variant = "sentinel"

    def __init__(self, root: Path) -> None:
        first = RedisProcess(root)
        self.servers = [first, RedisProcess(root, replica_of=first.port)]
        self.sentinels = [SentinelProcess(root, first.port) for _ in range(3)]

    def start(self) -> None:
        for server in self.servers:
            server.start()
        for sentinel in self.sentinels:
            sentinel.start()
        wait_until(lambda: self._replicas_known(), 30, "sentinels see the replica")

    def _replicas_known(self) -> bool:
        try:
            with redis.Redis(port=self.sentinels[0].port, decode_responses=True) as client:
                return bool(client.execute_command("SENTINEL", "replicas", MASTER_NAME))
        except redis.exceptions.RedisError:
            return False

    def master_port(self) -> int:
        for sentinel in self.sentinels:
            if (port := sentinel.master_port()) is not None:
                return port
        raise RuntimeError("no sentinel answers")

    def env(self) -> dict[str, str]:
        sentinels = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        # REDIS_URL names the first master, for services that know no Sentinel yet.
        return {"REDIS_URL": self.servers[0].url, "REDIS_SENTINELS": sentinels,
                "REDIS_MASTER_NAME": MASTER_NAME}

    def restart(self, kill: bool = True) -> dict[str, Any]:
        started = time.monotonic()
        old_port = self.master_port()
        old = next(s for s in self.servers if s.port == old_port)
        old.stop(kill=True)
        wait_until(lambda: self.master_port() != old_port, 60, "sentinel failover")
        failover = time.monotonic() - started
        old.replica_of = self.master_port()
        old.start()
        return {"signal": "SIGKILL (master)", "killed_port": old_port,
                "new_master_port": old.replica_of, "failover_s": round(failover, 2),
                "down_s": round(failover, 2)}

    def master(self) -> redis.Redis:
        return redis.Redis(port=self.master_port(), decode_responses=False, socket_timeout=30)

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for server in self.servers:
            server.stop(kill=True)


def make_setup(variant: str, root: Path) -> RedisSetup:
    return SentinelSetup(root) if variant == "sentinel" else AofSetup(root)
