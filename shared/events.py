"""The event protocol between workers and SSE clients.

Workers append each event to a per-job list as a ready-to-send SSE frame (`id`, `event`,
`data`), so the API relays bytes without decoding them; the frame's id is its 1-based position
in the list, which makes ids unique, gap-free and identical on every replay.
"""

from __future__ import annotations

import json
from typing import Any

STATUS = "status"
TOKEN = "token"
RESET = "reset"
DONE = "done"

_DONE_MARK = b"\nevent: done\n"


def frame_id(frame: bytes) -> int:
    """The SSE id of a stored frame (`id: N\\n…`)."""
    return int(frame[4 : frame.index(b"\n")])


def is_done(frame: bytes) -> bool:
    return _DONE_MARK in frame


def data(payload: Any) -> str:
    """Compact JSON for an event's data line (never contains a newline)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def parse_frame(frame: str) -> tuple[int, str, Any]:
    """Split a frame into (id, event, decoded data); used by clients and tests."""
    fields: dict[str, str] = {}
    for line in frame.strip("\n").split("\n"):
        name, _, value = line.partition(": ")
        fields[name] = value
    return int(fields["id"]), fields["event"], json.loads(fields["data"])
