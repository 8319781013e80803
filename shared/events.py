"""The event protocol between workers and SSE clients.

Workers append each event to a per-job list as a ready-to-send SSE frame (`id`, `event`,
`data`), so the API relays bytes without decoding them; the frame's id is its 1-based position
in the list, which makes ids unique, gap-free and identical on every replay.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

STATUS = "status"
TOKEN = "token"
RESET = "reset"
DONE = "done"
# Said by the API's relay to one client, never stored: frames without an id.
RECONNECT = "reconnect"
ERROR = "error"

_DONE_MARK = b"\nevent: done\n"


class Frame(NamedTuple):
    """A parsed frame (`id` None: one the relay said to a single client)."""

    id: int | None
    event: str
    data: Any


def frame(event_id: int | None, event: str, payload: Any, *, retry_ms: int | None = None,
          ) -> bytes:
    """The one definition of an event frame: `id: N\\nevent: NAME\\ndata: JSON\\n\\n`, byte for
    byte what the Lua `append` stores. `event_id` None is for what the relay says to one client
    (not part of the job's log): with no id line, the client's Last-Event-ID stays the last
    logged event, so a resume loses nothing and ids stay those of the log."""
    head = b"" if retry_ms is None else b"retry: %d\n" % retry_ms
    if event_id is not None:
        head += b"id: %d\n" % event_id
    return b"%sevent: %s\ndata: %s\n\n" % (head, event.encode(), data(payload).encode())


def parse_frame(raw: bytes | str) -> Frame:
    """The inverse of `frame` (a missing blank line at the end is forgiven)."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    fields: dict[str, str] = {}
    for line in text.strip("\n").split("\n"):
        name, _, value = line.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value
    given = fields.get("id")
    return Frame(int(given) if given else None, fields.get("event", "message"),
                 json.loads(fields["data"]))


def frame_id(stored: bytes) -> int:
    """The SSE id of a stored frame (`id: N\\n…`), without parsing the rest: the relay reads
    it for every frame it forwards."""
    return int(stored[4 : stored.index(b"\n")])


def is_done(stored: bytes) -> bool:
    return _DONE_MARK in stored


def data(payload: Any) -> str:
    """Compact JSON for an event's data line (never contains a newline)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
