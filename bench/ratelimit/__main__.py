"""`python -m bench.ratelimit [--quick] [--jobs N] [--scale K] [--streams N] [--only a|b]`:
run the parts, print their tables and write bench/results/ratelimit.json."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import asdict
from typing import Any

import uvloop

import bench.ratelimit
from bench.common.output import ROOT, write_results
from bench.ratelimit.limits_run import part_a
from bench.ratelimit.plan import RESULTS, Plan, make_plan
from bench.ratelimit.report import table
from bench.ratelimit.streams import part_b
from tests.procs import RedisServer


async def run(plan: Plan, parts: str) -> dict[str, Any]:
    results: dict[str, Any] = {"plan": {**asdict(plan), "cpus": os.cpu_count()}}
    server = RedisServer().start()
    try:
        if parts in ("all", "b"):  # first: the bare SDK's RSS is measured in this process
            results["part_b"] = await part_b(plan, server)
        if parts in ("all", "a"):
            results["part_a"] = await part_a(plan, server)
    finally:
        server.stop()
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ratelimit",
                                     description=bench.ratelimit.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller run of about two minutes")
    parser.add_argument("--jobs", type=int, default=0, help="Part A jobs (default 2000)")
    parser.add_argument("--scale", type=int, default=0,
                        help="K: the low tier's limits times K (default: fits the run)")
    parser.add_argument("--streams", type=int, default=0, help="Part B streams (default 1100)")
    parser.add_argument("--only", choices=("a", "b"), help="run one part only")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    plan = make_plan(args)
    started = time.monotonic()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(run(plan, args.only or "all"))
    results["plan"]["wall_s"] = round(time.monotonic() - started, 1)
    results["command"] = " ".join(["python -m bench.ratelimit", *sys.argv[1:]])
    write_results(RESULTS, results)
    sys.stdout.write(table(results) + f"\n\ntotal {results['plan']['wall_s']} s; "
                     f"figures in {RESULTS.relative_to(ROOT)}\n")


if __name__ == "__main__":
    main()
