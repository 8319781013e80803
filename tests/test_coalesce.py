"""The token coalescer on its own: what reaches `emit`, and when — and that no text is lost or
repeated when emits fail."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from workers.coalesce import Coalescer


class Recorder:
    def __init__(self, delay: float = 0.0, refuse_after: int = 0) -> None:
        self.chunks: list[tuple[float, str]] = []
        self.delay = delay
        self.refuse_after = refuse_after
        self.busy = 0

    @property
    def texts(self) -> list[str]:
        return [text for _, text in self.chunks]

    async def emit(self, text: str, seq: int, pieces: int = 1) -> int:
        assert seq == len(self.chunks) + 1, "a chunk skipped or repeated a sequence number"
        self.busy += 1
        assert self.busy == 1, "emits overlapped"
        self.chunks.append((asyncio.get_running_loop().time(), text))
        await asyncio.sleep(self.delay)
        self.busy -= 1
        if self.refuse_after and len(self.chunks) >= self.refuse_after:
            return -2
        return len(self.chunks)


async def test_first_token_goes_at_once_and_a_burst_is_merged() -> None:
    out = Recorder()
    coalescer = Coalescer(out.emit, window=0.05)
    started = asyncio.get_running_loop().time()
    coalescer.add("a")
    await asyncio.sleep(0)  # the drain task runs: the first token is out
    assert out.chunks and out.chunks[0][0] - started < 0.01
    for piece in "bcd":
        coalescer.add(piece)
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.08)
    assert out.texts == ["a", "bcd"]
    assert out.chunks[1][0] - out.chunks[0][0] >= 0.05  # held for the window


async def test_tokens_further_apart_than_the_window_go_one_by_one() -> None:
    out = Recorder()
    coalescer = Coalescer(out.emit, window=0.01)
    for piece in ("x", "y", "z"):
        coalescer.add(piece)
        await asyncio.sleep(0.03)
    assert out.texts == ["x", "y", "z"]


async def test_flush_sends_what_is_held_without_waiting_out_the_window() -> None:
    out = Recorder(delay=0.002)
    coalescer = Coalescer(out.emit, window=10.0)
    coalescer.add("first")
    await asyncio.sleep(0.01)
    coalescer.add("held ")
    coalescer.add("back")
    await asyncio.wait_for(coalescer.flush(), 1.0)
    assert out.texts == ["first", "held back"]
    await coalescer.flush()  # nothing left: returns at once
    assert len(out.chunks) == 2


async def test_a_refusal_stops_the_stream_of_emits() -> None:
    out = Recorder(refuse_after=1)
    coalescer = Coalescer(out.emit, window=0.0)
    coalescer.add("one")
    await asyncio.sleep(0.01)
    coalescer.add("two")
    await coalescer.flush()
    assert out.texts == ["one"]
    assert coalescer.refused == -2


async def test_text_added_while_an_emit_is_in_flight_follows_it_in_order() -> None:
    out = Recorder(delay=0.02)
    coalescer = Coalescer(out.emit, window=0.0)
    coalescer.add("1")
    await asyncio.sleep(0.005)  # "1" is being emitted
    coalescer.add("2")
    coalescer.add("3")
    await coalescer.flush()
    assert out.texts == ["1", "23"]


class Store:
    """The token log as the TOKEN script keeps it: a chunk is appended only if its seq is above
    the last one stored, else answered with the last id. `outcomes` scripts the emits in turn:
    "ok", "before" (the error comes before Redis stored anything) or "after" (stored, but the
    reply was lost); `error` is what a failure raises; `fail_forever` fails every emit."""

    def __init__(self, *outcomes: str, error: type[Exception] = RedisConnectionError,
                 fail_forever: bool = False) -> None:
        self.outcomes = list(outcomes)
        self.error = error
        self.fail_forever = fail_forever
        self.log: list[str] = []
        self.stored_seq = 0
        self.tries: list[tuple[str, int]] = []

    @property
    def text(self) -> str:
        return "".join(self.log)

    async def emit(self, text: str, seq: int, pieces: int = 1) -> int:
        self.tries.append((text, seq))
        await asyncio.sleep(0)
        outcome = "before" if self.fail_forever else (self.outcomes.pop(0) if self.outcomes
                                                      else "ok")
        if outcome == "before":
            raise self.error("OOM command not allowed" if self.error is ResponseError else "down")
        if seq > self.stored_seq:
            self.stored_seq = seq
            self.log.append(text)
        if outcome == "after":
            raise self.error("connection lost while reading the reply")
        return len(self.log)


async def _feed(coalescer: Coalescer, pieces: list[str], gap: float) -> None:
    for piece in pieces:
        coalescer.add(piece)
        await asyncio.sleep(gap)


PIECES = [f"<{n}>" for n in range(20)]


@pytest.fixture
async def unobserved() -> AsyncIterator[list[dict[str, Any]]]:
    """Exceptions the event loop reports as never retrieved, collected instead of logged."""
    seen: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: seen.append(context))
    yield seen
    gc.collect()
    loop.set_exception_handler(None)


async def test_a_refused_write_is_sent_again_and_nothing_is_lost(unobserved: Any) -> None:
    store = Store("ok", "before", error=ResponseError)
    coalescer = Coalescer(store.emit, window=0.001, backoff=0.005)
    await _feed(coalescer, PIECES, 0.002)
    await coalescer.flush()
    assert store.text == "".join(PIECES)
    failed = store.tries[1]
    assert store.tries[2] == failed  # the same chunk under the same seq, nothing merged in
    gc.collect()
    assert not unobserved


async def test_an_outage_over_several_emits_keeps_every_piece_in_order(unobserved: Any) -> None:
    store = Store("ok", "before", "before", "before", "before")
    coalescer = Coalescer(store.emit, window=0.001, backoff=0.005)
    await _feed(coalescer, PIECES, 0.003)
    await asyncio.sleep(0.1)  # the outage is over before the stream ends
    await coalescer.flush()
    assert store.text == "".join(PIECES)
    seqs = [seq for _, seq in store.tries]
    assert seqs == sorted(seqs) and len(store.log) == len(set(seqs))
    assert len(store.log) < len(PIECES)  # what arrived during the outage went out merged
    gc.collect()
    assert not unobserved


async def test_a_lost_reply_does_not_repeat_the_chunk_or_drop_what_followed() -> None:
    # The chunk is stored, the reply lost: the resend under the same seq is taken for it, and
    # what was added meanwhile goes next under a new seq instead of vanishing with it.
    store = Store("ok", "after", "after", "ok")
    coalescer = Coalescer(store.emit, window=0.001, backoff=0.005)
    await _feed(coalescer, PIECES, 0.002)
    await coalescer.flush()
    assert store.text == "".join(PIECES)


async def test_flush_raises_when_the_text_cannot_be_delivered(unobserved: Any) -> None:
    store = Store(fail_forever=True)
    coalescer = Coalescer(store.emit, window=0.001, backoff=0.005, patience=60.0)
    coalescer.add("lost")
    await asyncio.sleep(0.02)
    started = asyncio.get_running_loop().time()
    with pytest.raises(RedisConnectionError):
        await coalescer.flush()  # failing when called: one more try, then the error
    assert asyncio.get_running_loop().time() - started < 0.5
    assert store.log == []
    gc.collect()
    assert not unobserved


async def test_past_its_patience_the_coalescer_stops_trying_and_flush_raises() -> None:
    store = Store(fail_forever=True, error=ResponseError)
    coalescer = Coalescer(store.emit, window=0.001, backoff=0.005, patience=0.03)
    coalescer.add("a")
    await asyncio.sleep(0.1)
    tries = len(store.tries)
    coalescer.add("b")  # held, not sent: the delivery is already lost
    await asyncio.sleep(0.05)
    assert len(store.tries) == tries
    with pytest.raises(ResponseError):
        await coalescer.flush()


async def test_after_flush_raised_the_next_attempt_streams_under_new_seqs() -> None:
    store = Store("before", "before")
    coalescer = Coalescer(store.emit, window=0.0, backoff=0.001)
    coalescer.add("void")
    await asyncio.sleep(0)
    with pytest.raises(RedisConnectionError):
        await coalescer.flush()
    coalescer.add("fresh")
    await coalescer.flush()
    assert store.log == ["fresh"]
    assert store.tries[-1][1] > max(seq for _, seq in store.tries[:-1])


async def test_deltas_without_text_are_counted_with_the_next_chunk_or_alone() -> None:
    """A tool call streams one field as text; its other deltas still count (a dead worker's
    attempt is billed by deltas), riding with the next chunk, or alone as an empty chunk."""
    sent: list[tuple[str, int, int]] = []

    async def emit(text: str, seq: int, pieces: int) -> int:
        sent.append((text, seq, pieces))
        return len(sent)

    coalescer = Coalescer(emit, window=0.0)
    coalescer.count()
    coalescer.count()
    coalescer.add("Dry")
    await coalescer.flush()
    coalescer.count()
    await coalescer.flush()
    assert "".join(text for text, _, _ in sent) == "Dry"
    assert sum(pieces for _, _, pieces in sent) == 4
    assert [seq for _, seq, _ in sent] == list(range(1, len(sent) + 1))
