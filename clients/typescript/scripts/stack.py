"""A running Sidecar for the TypeScript integration tests and for trying the demo by hand.

    python3 clients/typescript/scripts/stack.py

starts a private redis-server, the Claude simulator, one worker for both queues and two APIs on
free loopback ports — one with auth off (`SIDECAR_AUTH=off`, as `sidecar up` runs it), one that
requires a service key (`SIDECAR_API_KEYS=ts-tenant:<random secret>`) — prints one JSON line

    {"url": ..., "keyed_url": ..., "api_key": ..., "tenant": ..., "redis_url": ..., "sim_url": ...}

(`api_key` is the secret alone, the part a client sends as `Authorization: Bearer`), and stops
everything on SIGTERM, SIGINT or when its standard input closes.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TENANT = "ts-tenant"
# A fresh secret per run (the API refuses secrets under 32 characters or left at template values).
SECRET = secrets.token_hex(24)
API_KEY = f"{TENANT}:{SECRET}"


def _wait_for_stop() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(1024):
                pass
        except (OSError, ValueError):
            pass
        stop.set()

    if sys.stdin is not None and not sys.stdin.closed:
        threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait()


def main() -> int:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    from tests.procs import RedisServer
    from tests.simulator_fixtures import start_simulator
    from tests.stack import service_env, start_api, start_worker

    started: list[object] = []
    try:
        redis = RedisServer().start()
        started.append(redis)
        sim = start_simulator(ttft_ms=20, tokens_per_second=150)
        started.append(sim)
        env = service_env(redis.url, sim.url)
        started.append(start_worker(env, "ts-worker", queues="interactive,batch"))
        api = start_api(env, "ts-api")
        started.append(api)
        keyed = start_api({**env, "SIDECAR_API_KEYS": API_KEY, "SIDECAR_AUTH": "on"},
                          "ts-api-keyed")
        started.append(keyed)
        info = {"url": api.url, "keyed_url": keyed.url, "api_key": SECRET, "tenant": TENANT,
                "redis_url": redis.url, "sim_url": sim.url}
        print(json.dumps(info), flush=True)
        _wait_for_stop()
    finally:
        for proc in reversed(started):
            proc.stop()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
