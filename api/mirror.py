"""Single-flight followers: a caller whose request is identical to one already running gets a
job of its own that mirrors the leader's run — its status, text and outcome — under its own id,
at no cost (the leader's call is paid once, by the leader). Its `done` is the leader's with the
follower's identity, so nothing a follower reads names the leader's job."""

from __future__ import annotations

from typing import Any

from shared import events
from shared.record import Record, links, view
from shared.schemas import FINISHED

# What stays the follower's own; everything else is read from the leader's run.
_OWN = ("id", "created_at", "batch_id", "priority", "type")


def is_follower(record: Record) -> bool:
    return bool(record.get("leader"))


def mirrored(follower: Record, leader_view: dict[str, Any]) -> dict[str, Any]:
    """The leader's public view as the follower's."""
    own = view(follower)
    return {**leader_view, **{k: own[k] for k in _OWN}, "cost_usd": 0.0,
            "links": links(follower["id"])}


def view_of(follower: Record, leader: Record | None) -> dict[str, Any]:
    """A follower's view: its own once it has ended by itself (cancelled), or once its leader
    is gone; the leader's run otherwise."""
    if follower["status"] in FINISHED or leader is None:
        return view(follower)
    return mirrored(follower, view(leader))


def done_frame(frame: bytes, follower: Record) -> bytes:
    """The leader's `done` frame, rewritten as the follower's (same event id)."""
    event_id, _, leader_view = events.parse_frame(frame)
    return events.frame(event_id, events.DONE, mirrored(follower, leader_view))
