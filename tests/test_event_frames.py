"""The one definition of an SSE frame (`shared.events.frame`) and what is built from it: the
relay's own frames, a follower's rewritten `done`, and how the client takes an `error`."""

from __future__ import annotations

import pytest

from api import sse
from api.draining import RECONNECT
from shared import events
from sidecar.errors import NotFoundError
from sidecar.jobs import Resume
from sidecar.sse import Event, parse_lines


def test_a_frame_is_byte_for_byte_what_the_lua_append_writes() -> None:
    # 'id: ' .. n .. '\nevent: ' .. name .. '\ndata: ' .. payload .. '\n\n', payload = data()
    payload = {"text": "Kia ora — \"dry\"\nplain: 3/4"}
    expected = b"id: 12\nevent: token\ndata: " + events.data(payload).encode() + b"\n\n"
    assert events.frame(12, events.TOKEN, payload) == expected
    assert events.frame_id(expected) == 12


def test_parse_frame_inverts_frame() -> None:
    for event_id in (1, 40000, None):
        built = events.frame(event_id, events.DONE, {"status": "succeeded", "note": "a: b"})
        assert events.parse_frame(built) == (event_id, "done",
                                             {"status": "succeeded", "note": "a: b"})
        assert events.parse_frame(built.decode()) == events.parse_frame(built)


def test_the_relays_own_frames_carry_no_id() -> None:
    assert RECONNECT == b'retry: 1000\nevent: reconnect\ndata: {"retry_ms":1000}\n\n'
    assert sse.GONE.startswith(b"event: error\ndata: ")
    assert events.parse_frame(sse.GONE).data["type"] == "not_found"
    # What the client library reads off the wire: one error event.
    lines = iter(sse.GONE.decode().split("\n"))
    assert [e.event for e in parse_lines(lines)] == ["error"]


def test_a_followers_own_done_is_numbered_after_what_was_sent() -> None:
    follower = {"id": "mine", "leader": "lead"}
    own = events.frame(3, events.DONE, {"id": "mine", "status": "cancelled"})
    ended = sse._Mirror(follower).own_end(own, 41)
    assert ended == events.frame(42, events.DONE, {"id": "mine", "status": "cancelled"})


def test_the_client_raises_at_an_error_event_and_keeps_its_position() -> None:
    resume = Resume("j", 7)
    assert resume.take(Event(8, "token", {"text": "x"}))
    with pytest.raises(NotFoundError):
        resume.take(Event(0, "error", {"type": "not_found", "message": "gone"}))
    assert not resume.take(Event(0, "reconnect", {"retry_ms": 1000}))
    assert resume.headers() == {"Last-Event-ID": "8"}
