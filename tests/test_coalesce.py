"""The token coalescer on its own: what reaches `emit`, and when."""

from __future__ import annotations

import asyncio

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

    async def emit(self, text: str) -> int:
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
