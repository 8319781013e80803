"""Anthropic Message Batches mode: a batch's jobs go to Claude as one Message Batch (half
price), collected by a periodic task that maps results back to jobs by custom_id."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from shared import keys, pricing
from shared.batches import BatchStore
from shared.jobtypes import InvalidModelOutput, get
from shared.lua import source
from shared.record import Record, as_str
from shared.upstream import caller_error
from workers.calls import build_request
from workers.context import Context
from workers.failures import logged_failure

log = logging.getLogger("sidecar.worker")
LEASE = 30 * 86400.0  # upstream batches may take up to a day; never reaped as lost
UPSTREAM_WINDOW_SECONDS = 86400  # how long Claude may take to end a Message Batch
# Longer than one create call may take (the client's 600 s timeout): a live holder keeps it.
SUBMIT_LOCK_SECONDS = 900
# Frees the lock only for its holder (not one that took it after ours lapsed).
_RELEASE = source("delete_if")


def owner_of(batch_id: str) -> str:
    return f"upstream:{batch_id}"


def params(record: Record, ctx: Context) -> dict[str, Any]:
    """A job's request as Message Batch params (the body has no `extra_body`)."""
    request = build_request(record, ctx.settings)
    return {**request.pop("extra_body", {}), **request}


async def submit(ctx: Context, batches: BatchStore, batch_id: str) -> str:
    """Send the batch's jobs as one Message Batch: once however often the task is delivered (an
    expiring lock keeps two deliveries from both sending), and again after any failure, since
    `upstream_id` is recorded only once Claude has the batch and `poll` submits any batch
    without one."""
    lock, token = keys.batch_submitting(batch_id), secrets.token_hex(8)
    if not await batches.redis.set(lock, token, nx=True, ex=SUBMIT_LOCK_SECONDS):
        return "being submitted"
    try:
        return await _submit(ctx, batches, batch_id)
    except Exception as exc:
        log.warning("upstream batch not submitted; the next poll tries again",
                    extra={"batch_id": batch_id, "error": repr(exc)})
        return "failed"
    finally:
        await batches.redis.register_script(_RELEASE)([lock], [token])


async def _submit(ctx: Context, batches: BatchStore, batch_id: str) -> str:
    info = await batches.info(batch_id)
    if info is None:  # expired: nothing left to send or collect
        await batches.redis.srem(keys.upstream_batches(), batch_id)
        return "missing"
    if info.get("upstream_id"):
        return "already submitted"
    requests = await _claim_all(ctx, batch_id, await batches.job_ids(batch_id),
                                cancelled=info.get("cancel") == "1")
    if not requests:
        await batches.redis.srem(keys.upstream_batches(), batch_id)
        return "nothing to submit"
    await _outlive_upstream(ctx, batch_id, [r["custom_id"] for r in requests])
    created = await ctx.client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    if not await batches.redis.hsetnx(keys.batch(batch_id), "upstream_id", created.id):
        # Only if our lock lapsed mid-call and another delivery sent the batch too: keep theirs.
        await ctx.client.messages.batches.cancel(created.id)
        return "already submitted"
    await batches.set(batch_id, upstream_status="in_progress")
    log.info("upstream batch created", extra={"batch_id": batch_id, "upstream_id": created.id,
                                              "jobs": len(requests)})
    return created.id


async def _claim_all(ctx: Context, batch_id: str, job_ids: list[str],
                     cancelled: bool) -> list[dict[str, Any]]:
    """The requests of the jobs to send: each claimed for the batch now, or already claimed by
    an attempt that failed (its claim is ours to reuse, not a busy job)."""
    owner, requests = owner_of(batch_id), []
    for record in await ctx.store.get_all(job_ids):
        if record is None:
            continue
        if record["status"] == "running" and record.get("owner") == owner:
            outcome = "cancel" if record.get("cancel") == "1" else "claimed"
        else:
            outcome = (await ctx.store.claim(record["id"], owner, LEASE, 1000, begin=True)).outcome
            await ctx.store.redis.zrem(keys.leases(), record["id"])  # Claude holds it
        if outcome == "claimed" and cancelled:
            outcome = "cancel"
        if outcome == "cancel":
            await finish(ctx, record, owner, "cancelled", {}, None)
        elif outcome == "claimed":
            requests.append({"custom_id": record["id"], "params": params(record, ctx)})
    return requests


async def _outlive_upstream(ctx: Context, batch_id: str, job_ids: list[str]) -> None:
    """Claude may take a day to end a Message Batch: the records it answers to must still be
    there then, and keep the usual TTL after (finishing a job sets that again)."""
    ttl = UPSTREAM_WINDOW_SECONDS + ctx.store.ttl
    async with ctx.store.redis.pipeline(transaction=False) as pipe:
        for key in (keys.batch(batch_id), keys.batch_jobs(batch_id)):
            pipe.expire(key, ttl)
        for job_id in job_ids:
            pipe.expire(keys.job(job_id), ttl)
            pipe.expire(keys.events(job_id), ttl)
        await pipe.execute()


async def poll(ctx: Context, batches: BatchStore) -> list[str]:
    """Collect every upstream batch that has ended, cancel those whose batch was cancelled and
    submit those not (yet) sent; one batch's failure never holds up the others."""
    collected = []
    for raw in await batches.redis.smembers(keys.upstream_batches()):
        batch_id = as_str(raw)
        try:
            if await _poll_one(ctx, batches, batch_id):
                collected.append(batch_id)
        except Exception as exc:
            log.warning("upstream batch not collected; the next poll tries again",
                        extra={"batch_id": batch_id, "error": repr(exc)})
    return collected


async def _poll_one(ctx: Context, batches: BatchStore, batch_id: str) -> bool:
    """True once the batch is collected."""
    info = await batches.info(batch_id) or {}
    upstream_id = info.get("upstream_id")
    if not upstream_id:  # a submission that failed, crashed or was never sent
        await submit(ctx, batches, batch_id)
        return False
    remote = await ctx.client.messages.batches.retrieve(upstream_id)
    await batches.set(batch_id, upstream_status=remote.processing_status)
    if info.get("cancel") == "1" and remote.processing_status == "in_progress":
        await ctx.client.messages.batches.cancel(upstream_id)
    if remote.processing_status != "ended":
        return False
    await collect(ctx, batch_id, upstream_id)
    await batches.redis.srem(keys.upstream_batches(), batch_id)
    return True


async def cancel(ctx: Context, batches: BatchStore, batch_id: str) -> None:
    info = await batches.info(batch_id) or {}
    if info.get("upstream_id"):
        await ctx.client.messages.batches.cancel(info["upstream_id"])


async def collect(ctx: Context, batch_id: str, upstream_id: str) -> None:
    owner = owner_of(batch_id)
    async for item in await ctx.client.messages.batches.results(upstream_id):
        record = await ctx.store.get(item.custom_id)
        if record is None:
            continue
        outcome = item.result
        if outcome.type == "succeeded":
            await _succeeded(ctx, record, owner, outcome.message)
        elif outcome.type == "errored":
            error = outcome.error.error
            log.warning("job failed", extra={"job_id": record["id"], "error_type": error.type,
                                             "detail": error.message})
            await finish(ctx, record, owner, "failed", {}, caller_error(error.type))
        elif outcome.type == "canceled":
            await finish(ctx, record, owner, "cancelled", {}, None)
        else:
            await finish(ctx, record, owner, "failed", {},
                         {"type": "expired", "message": "the Message Batch expired first"})


async def _succeeded(ctx: Context, record: Record, owner: str, message: Any) -> None:
    text = "".join(b.text for b in message.content if b.type == "text")
    tools = {b.name: json.dumps(b.input) for b in message.content if b.type == "tool_use"}
    usage = {k: getattr(message.usage, k) or 0 for k in (
        "input_tokens", "output_tokens", "cache_creation_input_tokens",
        "cache_read_input_tokens")}
    job_type = get(record["type"])
    assert job_type is not None
    try:
        result = job_type.read_result(text, tools)
    except InvalidModelOutput as exc:
        await finish(ctx, record, owner, "failed", usage, logged_failure(record["id"], exc)[1])
        return
    if result.get("text"):  # followers of the job's stream see the answer too
        await ctx.store.append_token(record["id"], owner, result["text"], seq=1)
    await finish(ctx, record, owner, "succeeded", usage, None, result)


async def finish(ctx: Context, record: Record, owner: str, status: str, usage: dict[str, int],
                 error: dict[str, str] | None, result: dict[str, Any] | None = None) -> None:
    cost = pricing.cost_usd(record["model"], usage, batch=True,
                            overrides=ctx.settings.model_prices)
    fields = {"status": status, "usage": json.dumps(usage or {"input_tokens": 0,
                                                              "output_tokens": 0}),
              "cost_usd": repr(cost), "result": json.dumps(result) if result else "",
              "error": json.dumps(error) if error else ""}
    final = await ctx.store.finish(record["id"], owner, fields)
    if final is not None:
        ctx.tally.job_ended(final)
        ctx.metrics.job_ended(final)
