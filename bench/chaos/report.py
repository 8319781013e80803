"""The figures of a run, a verdict per goal, the printed table and the JSON."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from bench.chaos import rules
from bench.chaos.audit import JobFate
from bench.chaos.recovery import Recovery
from bench.chaos.streams import StreamTrace
from bench.common.stats import percentile

TOKEN_KINDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens",
               "cache_read_input_tokens")
MESSAGES = "/v1/messages"
RERUN_GOAL_S = 60.0  # INTERFACE.md: running again on a live worker within 60 s


def outcomes(fates: Iterable[JobFate]) -> dict[str, Any]:
    fates = list(fates)
    finished = [f for f in fates if f.status in ("succeeded", "failed", "cancelled")]
    failed = Counter(rules.failure_reason(f.job or {"status": f.status})
                     for f in finished if f.status != "succeeded")
    lost = [f for f in fates if f.status not in ("succeeded", "failed", "cancelled")]
    return {
        "by_status": dict(Counter(f.status for f in fates)),
        "succeeded": sum(f.status == "succeeded" for f in fates),
        "failed_by_reason": dict(failed),
        "lost": len(lost),
        "lost_by_state": dict(Counter(f"{f.kind}: {f.status}" for f in lost)),
        "lost_examples": [f.job_id for f in lost[:5]],
        "more_than_one_done": sum(f.done_events > 1 for f in fates),
        "more_than_one_done_examples": [f.job_id for f in fates if f.done_events > 1][:5],
        "log_text_differs": dict(Counter(f.kind for f in fates if f.text_differs)),
        "requeues": dict(sum((f.requeues for f in fates), Counter())),
        "jobs_with_reset": sum(f.resets > 0 for f in fates),
        "attempts": dict(Counter(int(f.job.get("attempts") or 0) for f in fates)),
    }


def nonce_twice(fates: Iterable[JobFate], nonces: dict[str, str]) -> int:
    """Nonces (one per job sent) answered by more than one succeeded job."""
    found = Counter(nonces[f.job_id] for f in fates if f.status == "succeeded")
    return sum(n > 1 for n in found.values())


def billing(fates: Iterable[JobFate], sim: dict[str, Any]) -> dict[str, Any]:
    """The jobs' summed usage and attempts against the simulator's ledger."""
    jobs: Counter[str] = Counter()
    attempts = 0
    for f in fates:
        usage = f.job.get("usage") or {}
        jobs.update({k: int(usage.get(k) or 0) for k in TOKEN_KINDS})
        attempts += int(f.job.get("attempts") or 0)
    ledger = sim.get("tokens") or {}
    calls = sum((sim.get("requests") or {}).get(MESSAGES, {}).values())
    rows = {k: {"jobs": jobs[k], "simulator": int(ledger.get(k) or 0)} for k in TOKEN_KINDS}
    rows["calls (attempts)"] = {"jobs": attempts, "simulator": calls}
    return rows


def ledger_notes(sim: dict[str, Any], succeeded: int) -> dict[str, Any]:
    """What the simulator's ledger says beyond the totals (when it keeps one): calls
    answered, completed and cut; output tokens of cut calls; completed calls beyond the
    succeeded jobs (an answer delivered upstream that no job kept: a worker killed between
    the stream's end and the job's finish, then the job run again)."""
    calls = sim.get("calls") or {}
    tokens = sim.get("tokens") or {}
    notes: dict[str, Any] = dict(calls)
    if "output_tokens_cut" in tokens:
        notes["output_tokens_cut"] = tokens["output_tokens_cut"]
    if "completed" in calls:
        notes["completed_beyond_succeeded"] = int(calls["completed"]) - succeeded
    return notes


def streams(traces: list[StreamTrace], unfinished: set[str]) -> dict[str, Any]:
    """What the followers saw; a stream without `done` is a defect only if its job finished
    (a lost job's stream has nothing to end it)."""
    no_done = [t for t in traces if t.outcome() == "no done event"]
    return {
        "followed": len(traces),
        "text_differs": sum(t.outcome() == "text differs from result.text" for t in traces),
        "no_done": sum(t.job_id not in unfinished for t in no_done),
        "no_done_job_unfinished": sum(t.job_id in unfinished for t in no_done),
        "differs_examples": [t.job_id for t in traces if t.outcome()][:5],
        "connections": sum(t.connections for t in traces),
        "planned_cuts": sum(t.planned_cuts for t in traces),
        "broken": dict(sum((t.broken for t in traces), Counter())),
        "replayed_ids": sum(t.replayed_ids for t in traces),
        "resets_seen": sum(rules.count_events(t.events, "reset") for t in traces),
    }


def recovery(recoveries: list[Recovery]) -> dict[str, Any]:
    times = [r.rerun_s for r in recoveries if r.rerun_s is not None]
    return {
        "jobs_held_by_killed_workers": len(recoveries),
        "rerun": len(times),
        "ended_otherwise": dict(Counter(r.ended for r in recoveries if r.rerun_s is None)),
        "not_rerun": [{"job_id": r.job_id, "ended": r.ended} for r in recoveries
                      if r.rerun_s is None][:10],
        "p50_s": round(percentile(times, 50), 2) if times else None,
        "max_s": round(max(times), 2) if times else None,
    }


def verdicts(figures: dict[str, Any]) -> dict[str, bool]:
    jobs, billed = figures["jobs"], figures["billing"]
    rerun = figures["recovery"]
    return {
        "lost = 0": jobs["lost"] == 0,
        "succeeded twice = 0": figures["succeeded_twice"] == 0,
        "streams whose text differs = 0": (figures["streams"]["text_differs"]
                                           + figures["streams"]["no_done"]) == 0,
        "event logs whose text differs = 0": not jobs["log_text_differs"],
        "billed = simulator's ledger": all(r["jobs"] == r["simulator"] for r in billed.values()),
        "limiter leftovers = 0": not figures["limiter_leftovers"],
        "keys without TTL: only documented": not figures["unexpected_without_ttl"],
        f"dead worker's jobs rerun, max <= {RERUN_GOAL_S:.0f} s": (
            rerun["max_s"] is None or rerun["max_s"] <= RERUN_GOAL_S
        ) and not rerun["ended_otherwise"].get("timeout"),
    }


def table(results: dict[str, Any]) -> str:
    f = results["figures"]
    jobs, load = f["jobs"], f["load"]
    rows = [
        ("variant", results["config"]["variant"]),
        ("upstream faults", "; ".join(f"{k} {v}" for k, v in results["upstream_faults"].items())),
        ("submitted", f"{load['submitted']} ({load['single']} one by one, {load['batch']} in "
                      f"the batch); POSTs never accepted: {sum(load['refused'].values())} "
                      f"{load['refused'] or ''}"),
        ("final status", jobs["by_status"]),
        ("succeeded", jobs["succeeded"]),
        ("failed by reason", jobs["failed_by_reason"] or 0),
        ("LOST (goal 0)", f"{jobs['lost']} {jobs['lost_by_state'] or ''}"),
        *[(f"  lost {job_id}", " ".join(d["events"])) for job_id, d in f["lost_details"].items()],
        ("SUCCEEDED TWICE (goal 0)",
         f"{f['succeeded_twice']} (jobs with >1 done event: {jobs['more_than_one_done']}; "
         f"nonces with >1 succeeded job: {f['nonces_twice']})"),
        ("streams whose text differs (goal 0)",
         f"{f['streams']['text_differs']} of {f['streams']['followed']} followed "
         f"(no done though the job finished: {f['streams']['no_done']}, job unfinished: "
         f"{f['streams']['no_done_job_unfinished']}; {f['streams']['connections']} connections, "
         f"{f['streams']['planned_cuts']} hang-ups, resets seen {f['streams']['resets_seen']})"),
        ("event logs whose text differs (goal 0)", jobs["log_text_differs"] or 0),
        ("billed: jobs vs simulator",
         "; ".join(f"{k} {v['jobs']} vs {v['simulator']}" for k, v in f["billing"].items())),
        ("simulator's ledger", f["ledger"]),
        ("limiter slots/waiting left (goal 0)", f["limiter_leftovers"] or 0),
        ("keys without TTL", f["without_ttl"]),
        ("  not documented (goal none)", f["unexpected_without_ttl"] or "none"),
        ("dead worker's jobs: rerun after kill",
         f"p50 {f['recovery']['p50_s']} s, max {f['recovery']['max_s']} s "
         f"({f['recovery']['rerun']} of {f['recovery']['jobs_held_by_killed_workers']} "
         f"held; otherwise {f['recovery']['ended_otherwise'] or 'none'})"),
        ("requeues in event logs", f"{jobs['requeues'] or 0}; jobs with a reset: "
                                   f"{jobs['jobs_with_reset']}; attempts: {jobs['attempts']}"),
        ("simulator streams", {k: v for k, v in results["simulator_stats"]["streams"].items()
                               if k in ("completed", "aborted", "errored", "dropped")}),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines.append("")
    lines += [f"{'PASS  ' if ok else 'MISSED'}  {goal}" for goal, ok in results["verdicts"].items()]
    return "\n".join(lines)
