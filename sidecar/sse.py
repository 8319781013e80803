"""A small Server-Sent Events parser for the client library (the browser's EventSource rules:
fields until a blank line, comments ignored, multi-line data joined)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    id: int
    event: str
    data: Any


class Parser:
    def __init__(self) -> None:
        self._fields: dict[str, str] = {}
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        line = line.rstrip("\r")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        else:
            self._fields[name] = value
        return None

    def _dispatch(self) -> Event | None:
        if not self._data:
            self._fields.clear()
            return None
        raw = "\n".join(self._data)
        event = Event(int(self._fields.get("id") or 0), self._fields.get("event", "message"),
                      json.loads(raw))
        self._fields.clear()
        self._data.clear()
        return event


def parse_lines(lines: Iterator[str]) -> Iterator[Event]:
    parser = Parser()
    for line in lines:
        if (event := parser.feed(line)) is not None:
            yield event


async def aparse_lines(lines: AsyncIterator[str]) -> AsyncIterator[Event]:
    parser = Parser()
    async for line in lines:
        if (event := parser.feed(line)) is not None:
            yield event
