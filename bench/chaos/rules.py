"""The audit's pure functions: what a key's pattern is, what text an event log spells, what a
job's log says about it. No I/O here, so tests/test_chaos_audit.py checks them directly."""

from __future__ import annotations

import fnmatch
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

# A hash tag's content (`{3fa4…}`, `{batch:b91…}`, `{limit:claude-sonnet-5-5}`): the part
# after a known kind is starred, a bare id is starred whole.
_TAG = re.compile(r"\{([^{}]*)\}")
# Ids inside a plain key segment: hex runs of 8 or more, UUIDs, long digit runs, dates.
_ID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\bb?[0-9a-f]{8,}\b|\b\d{4,}\b|\b[dm]\d{4}-\d{2}(?:-\d{2})?\b",
    re.IGNORECASE,
)


def _star_tag(match: re.Match[str]) -> str:
    kind, sep, _ = match.group(1).partition(":")
    return "{" + (f"{kind}:*" if sep else "*") + "}"


def key_pattern(key: str) -> str:
    """The key with its ids replaced by `*`: `sidecar:{3fa4…}:job` → `sidecar:{*}:job`,
    `celery-task-meta-<uuid>` → `celery-task-meta-*`."""
    return _ID.sub("*", _TAG.sub(_star_tag, key))


def group_keys(keys: Iterable[str]) -> dict[str, int]:
    """How many keys fall under each pattern, most common first."""
    return dict(Counter(key_pattern(k) for k in keys).most_common())


def undocumented(patterns: Mapping[str, int], documented: Iterable[str]) -> dict[str, int]:
    """The patterns (of keys without TTL) that no documented glob covers."""
    globs = list(documented)
    return {p: n for p, n in patterns.items()
            if not any(fnmatch.fnmatchcase(p, glob) for glob in globs)}


def parse_frames(frames: Iterable[bytes | str]) -> list[tuple[int, str, Any]]:
    """Stored SSE frames (`id: N\\nevent: E\\ndata: …\\n\\n`) as (id, event, decoded data)."""
    parsed = []
    for raw in frames:
        text = raw.decode() if isinstance(raw, bytes) else raw
        fields: dict[str, str] = {}
        for line in text.strip("\n").split("\n"):
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        parsed.append((int(fields.get("id") or 0), fields.get("event", "message"),
                       json.loads(fields.get("data") or "null")))
    return parsed


def rebuild_text(events: Iterable[tuple[str, Any]]) -> str:
    """The text a client shows after these (event, data) pairs: `token` appends its text,
    `reset` drops everything the failed attempt streamed so far."""
    pieces: list[str] = []
    for event, data in events:
        if event == "token":
            pieces.append(data["text"])
        elif event == "reset":
            pieces.clear()
    return "".join(pieces)


def count_events(events: Iterable[tuple[str, Any]], event: str) -> int:
    return sum(1 for name, _ in events if name == event)


def requeue_reasons(events: Iterable[tuple[str, Any]]) -> Counter[str]:
    """The reasons of the `status: queued` events that handed a job back (`worker_lost`,
    `worker_shutdown`, …)."""
    return Counter(data.get("reason", "?") for name, data in events
                   if name == "status" and isinstance(data, dict)
                   and data.get("status") == "queued" and data.get("reason"))


def text_mismatch(events: Iterable[tuple[str, Any]], job: Mapping[str, Any]) -> bool:
    """A succeeded job whose log spells another text than its `result.text`."""
    if job.get("status") != "succeeded":
        return False
    return rebuild_text(events) != ((job.get("result") or {}).get("text") or "")


def failure_reason(job: Mapping[str, Any]) -> str:
    """`status` for a job that did not succeed, with its error type (`failed: upstream_error`)."""
    error = job.get("error") or {}
    kind = error.get("type") if isinstance(error, Mapping) else None
    return f"{job.get('status')}: {kind}" if kind else str(job.get("status"))
