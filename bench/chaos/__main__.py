"""`python -m bench.chaos [--quick] [--jobs N] [--seconds S] [--variant aof|sentinel]`: start
the stack, run the load under the fault schedule, audit Redis, print the table and write
bench/results/chaos-<variant>[-<appendfsync>][-quick].json."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import redis

import bench.chaos
from bench.chaos import audit, report
from bench.chaos.load import Load, submit_batch, submit_singles
from bench.chaos.plan import Plan, make_plan
from bench.chaos.recovery import RecoveryLog
from bench.chaos.redis_procs import appendfsync
from bench.chaos.schedule import Schedule
from bench.chaos.stack import WORKER_CONCURRENCY, Stack, running_stack
from bench.chaos.streams import Followers, StreamTrace
from bench.chaos.upstream import UpstreamFaults
from bench.common.output import RESULTS_DIR, ROOT, log, write_results
from shared.settings import Settings

FOLLOWER_GRACE = 30.0  # seconds followers get after the last job finished


async def run_load(stack: Stack, plan: Plan, faults: UpstreamFaults) -> dict[str, Any]:
    """Submit everything while the schedule strikes; return what the clients saw."""
    load, recovery = Load(), RecoveryLog()
    followers = Followers(stack.api_urls, plan.follow_share, plan.seed)
    schedule = Schedule(stack, plan, recovery)
    start = time.monotonic()
    feeder = asyncio.create_task(faults.feed())
    blows = asyncio.create_task(schedule.run(start))

    async def batch_later() -> list[str]:
        await asyncio.sleep(plan.seconds * 0.4)
        log(f"submitting a batch of {plan.batch_jobs} drought analyses")
        return await submit_batch(plan, stack.api_urls, load)

    batch = asyncio.create_task(batch_later())
    try:
        await submit_singles(plan, stack.api_urls, load,
                             lambda s: followers.maybe_follow(s.job_id, s.kind))
        batch_tags = await batch
        await blows
        log(f"load sent in {time.monotonic() - start:.0f} s; waiting for the jobs to finish")
        kinds, nonces = await asyncio.to_thread(job_index, stack, load, batch_tags)
        waited = await asyncio.to_thread(audit.wait_finished, stack.setup.master, list(kinds),
                                         plan.drain_seconds, log)
        traces: list[StreamTrace] = await followers.results(FOLLOWER_GRACE)
        await asyncio.gather(*recovery.tasks)
    finally:
        for task in (feeder, blows, batch, *recovery.tasks):
            task.cancel()
        await recovery.close()
    return {"load": load, "recovery": recovery, "traces": traces, "blows": schedule.blows,
            "kinds": kinds, "nonces": nonces, "drain_s": round(waited, 1),
            "wall_s": round(time.monotonic() - start, 1)}


def job_index(stack: Stack, load: Load, batch_tags: list[str]) -> tuple[dict[str, str],
                                                                        dict[str, str]]:
    """Every submitted job id with its kind ('batch' for the batch's) and its nonce."""
    kinds = {s.job_id: s.kind for s in load.submitted}
    nonces = {s.job_id: s.nonce for s in load.submitted}
    if load.batch_id is not None:
        for _ in range(30):  # Redis may be restarting
            try:
                ids = audit.batch_job_ids(stack.setup.master(), load.batch_id)
                break
            except redis.RedisError:
                time.sleep(1)
        else:
            ids = []
        kinds.update(dict.fromkeys(ids, "batch"))
        nonces.update(zip(ids, batch_tags, strict=False))
    return kinds, nonces


def audit_run(stack: Stack, seen: dict[str, Any]) -> dict[str, Any]:
    time.sleep(3)  # let the last releases and acks land
    client = stack.setup.master()
    fates = audit.job_fates(client, seen["kinds"])
    jobs = report.outcomes(fates)
    load: Load = seen["load"]
    batch = sum(k == "batch" for k in seen["kinds"].values())
    nonces_twice = report.nonce_twice(fates, seen["nonces"])
    without_ttl = audit.keys_without_ttl(client)
    sim = stack.sim.stats()
    return {
        "figures": {
            "load": {"submitted": len(seen["kinds"]), "single": len(load.submitted),
                     "batch": batch, "refused": dict(load.refused),
                     "post_retries": dict(load.retries)},
            "jobs": jobs,
            "succeeded_twice": jobs["more_than_one_done"] + nonces_twice,
            "nonces_twice": nonces_twice,
            "streams": report.streams(seen["traces"], {f.job_id for f in fates
                                                       if f.status not in audit.FINISHED}),
            "billing": report.billing(fates, sim),
            "ledger": report.ledger_notes(sim, jobs["succeeded"]),
            "limiter_leftovers": audit.limiter_leftovers(client),
            "without_ttl": without_ttl,
            "unexpected_without_ttl": audit.unexpected(without_ttl),
            "recovery": report.recovery(seen["recovery"].recoveries),
            "keys_after": audit.key_count(client),
            "queues_after": audit.queue_lengths(client),
            "lost_details": audit.describe_jobs(client, [f.job_id for f in fates if f.status
                                                         not in audit.FINISHED]),
            "twice_details": audit.describe_jobs(client, [f.job_id for f in fates
                                                          if f.done_events > 1]),
        },
        "simulator_stats": sim,
    }


def machine() -> dict[str, Any]:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               "unknown")
    return {"commit": commit, "cpu": cpu, "cpus": os.cpu_count(),
            "loadavg_1m_at_start": os.getloadavg()[0]}


def settings_used(stack: Stack) -> dict[str, Any]:
    defaults = Settings.model_fields
    return {
        "JOB_LEASE_SECONDS": stack.env.get("JOB_LEASE_SECONDS",
                                           f"default ({defaults['job_lease_seconds'].default})"),
        "JOB_MAX_ATTEMPTS": f"default ({defaults['job_max_attempts'].default})",
        "MAX_RETRIES": f"default ({defaults['max_retries'].default})",
        "worker_concurrency": WORKER_CONCURRENCY,
        "sentinel_support_in_settings": "redis_sentinels" in defaults,
        "appendfsync": appendfsync(),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos",
                                     description=bench.chaos.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 jobs over 60 s")
    parser.add_argument("--jobs", type=int, help="jobs in all (default 2000)")
    parser.add_argument("--seconds", "--duration", type=float, dest="seconds",
                        help="the submission window, faults within it (default 240)")
    parser.add_argument("--drain", type=float, help="seconds to wait for jobs to finish")
    parser.add_argument("--variant", choices=("aof", "sentinel"), default="aof")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def _interrupt(signum: int, frame: Any) -> NoReturn:
    raise KeyboardInterrupt  # SIGTERM stops the stack like Ctrl-C does


def main() -> None:
    args = parse_args()
    plan = make_plan(args)
    signal.signal(signal.SIGTERM, _interrupt)
    host = machine()
    log(f"starting the {plan.variant} stack: Redis, simulator, 2 APIs, 3 workers")
    with running_stack(plan) as stack:
        used = settings_used(stack)
        if plan.variant == "sentinel" and not used["sentinel_support_in_settings"]:
            log("Sidecar's settings know no REDIS_SENTINELS yet: services use REDIS_URL "
                "(the first master) and will not follow a failover")
        faults = UpstreamFaults(stack.sim, plan.fault_rates, plan.seed)
        modes = faults.configure()
        log(f"settings: {used}; upstream faults: {modes}")
        log(f"{plan.jobs} jobs over {plan.seconds:.0f} s")
        seen = asyncio.run(run_load(stack, plan, faults))
        faults.stop_all()
        log("auditing Redis")
        audited = audit_run(stack, seen)
    results: dict[str, Any] = {
        "config": {**plan.as_json(), "quick": args.quick, "settings": used, **host,
                   "loadavg_1m_at_end": os.getloadavg()[0], "wall_s": seen["wall_s"],
                   "drain_s": seen["drain_s"]},
        "upstream_faults": modes,
        "upstream_faults_queued_by_bench": dict(faults.fed_count),
        "blows": [vars(b) for b in seen["blows"]],
        **audited,
    }
    results["verdicts"] = report.verdicts(results["figures"])
    fsync = "" if appendfsync() == "everysec" else f"-{appendfsync()}"
    name = f"chaos-{plan.variant}{fsync}{'-quick' if args.quick else ''}.json"
    write_results(RESULTS_DIR / name, results)
    sys.stdout.write(f"{report.table(results)}\nfigures: {RESULTS_DIR / name}\n")


if __name__ == "__main__":
    main()
