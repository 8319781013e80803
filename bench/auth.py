"""What tenants cost on the submit path: `POST /api/jobs` latency of the API before issue 15
(a checkout of `--base`, no auth, no ownership, no budgets) against today's with auth off, with
a service key and with a browser token — same run, same Redis, interleaved rounds.

    python -m bench.auth [--rounds 3] [--posts 1000] [--base <commit>]

Each variant is one uvicorn process on its own Redis database; posts are sequential on one
kept-alive connection (the latency of one request, not throughput). Jobs stay queued: no
worker runs, so only the API and Redis are measured.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common.output import RESULTS_DIR, ROOT, log, write_results
from bench.common.procs import running_redis
from bench.common.stats import percentile, ratio
from tests.procs import free_port, stop_process, wait_until

BASE = "351d86f"  # the last commit before tenants, tokens and budgets (issue 15)
KEY = "farm:" + "f3a9c1e7b2d4" * 3
BODY = json.dumps({"type": "chat", "input": {"message": "How dry is it?"}, "max_tokens": 64,
                   "cache": False}).encode()


def _api(stops: contextlib.ExitStack, source: Path, env: dict[str, str]) -> int:
    """uvicorn serving the API found in `source`, on a free port."""
    port = free_port()
    log_file = stops.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed by stops)
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:app", "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning",
                             "--no-access-log"], cwd=source,
                            env={**env, "PYTHONPATH": str(source)},
                            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    stops.callback(stop_process, proc)

    def up() -> bool:
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        return False

    wait_until(up, 30, "api up")
    return port


def _posts(port: int, headers: dict[str, str], count: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    sent = {"Content-Type": "application/json", **headers}
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        conn.request("POST", "/api/jobs", BODY, sent)
        response = conn.getresponse()
        response.read()
        seconds.append(time.perf_counter() - started)
        assert response.status == 202, response.status
    conn.close()
    return seconds


def _token(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("POST", "/api/tokens", json.dumps({"subject": "bench", "ttl_seconds": 3600}),
                 {"Content-Type": "application/json", "Authorization": f"Bearer {KEY[5:]}"})
    return str(json.loads(conn.getresponse().read())["token"])


def _base_checkout(stops: contextlib.ExitStack, ref: str) -> Path:
    where = Path(stops.enter_context(tempfile.TemporaryDirectory())) / "base"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), ref],
                   check=True, capture_output=True)
    stops.callback(subprocess.run, ["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                    str(where)], capture_output=True)
    return where


def measure(rounds: int, posts: int, base: str) -> dict[str, Any]:
    with contextlib.ExitStack() as stops:
        redis = running_redis(stops)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}
        env.update(ANTHROPIC_API_KEY="sk-ant-bench", LOG_LEVEL="WARNING", CLIENT_RPM="0",
                   CLIENT_TPM="0")
        url = redis.url.rsplit("/", 1)[0]
        ports = {
            "before (no auth)": _api(stops, _base_checkout(stops, base),
                                     {**env, "REDIS_URL": f"{url}/1"}),
            "auth off": _api(stops, ROOT, {**env, "REDIS_URL": f"{url}/2", "SIDECAR_AUTH": "off"}),
            "service key": _api(stops, ROOT, {**env, "REDIS_URL": f"{url}/3",
                                              "SIDECAR_API_KEYS": KEY}),
        }
        headers = {name: {} for name in ports}
        headers["service key"] = {"Authorization": f"Bearer {KEY[5:]}"}
        ports["browser token"] = ports["service key"]
        headers["browser token"] = {"Authorization": f"Bearer {_token(ports['service key'])}"}
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in ports}
        for round_ in range(rounds):
            for name, port in ports.items():
                _posts(port, headers[name], 100)  # warm
                ms = [1000 * s for s in _posts(port, headers[name], posts)]
                samples[name].append({"p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99)})
            log(f"round {round_ + 1}/{rounds} done")
    return _figures(samples)


def _figures(samples: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    base = samples["before (no auth)"]
    out: dict[str, Any] = {}
    for name, rounds in samples.items():
        row: dict[str, Any] = {}
        for stat in ("p50_ms", "p99_ms"):
            values = [r[stat] for r in rounds]
            row[stat] = {"median": round(statistics.median(values), 3),
                         "worst": round(max(values), 3)}
            row[stat]["ratio_median"] = ratio(row[stat]["median"],
                                              statistics.median(r[stat] for r in base))
        out[name] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--base", default=BASE)
    args = parser.parse_args()
    figures = measure(args.rounds, args.posts, args.base)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown") \
        if Path("/proc/cpuinfo").exists() else "unknown"
    write_results(RESULTS_DIR / "auth.json", {"commit": commit, "cpu": cpu,
                                             "cores": os.cpu_count(), "base": args.base,
                                             "rounds": args.rounds, "posts": args.posts,
                                             "figures": figures})
    print(f"{'variant':<18} {'p50 ms (median / worst)':>26} {'p99 ms (median / worst)':>26}"
          f" {'p50 vs before':>14}")
    for name, row in figures.items():
        p50, p99 = row["p50_ms"], row["p99_ms"]
        print(f"{name:<18} {p50['median']:>13.3f} / {p50['worst']:<10.3f} "
              f"{p99['median']:>13.3f} / {p99['worst']:<10.3f} "
              f"{p50['ratio_median']:>13}x")


if __name__ == "__main__":
    main()
