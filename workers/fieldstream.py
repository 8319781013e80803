"""Streaming one string field out of a tool call's partial JSON, so the summary of a drought
analysis reaches the reader as Claude writes it, though the answer is a tool call."""

from __future__ import annotations

import json
import re

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class FieldStreamer:
    """Feed it the partial JSON chunks; it returns the newly complete characters of the field."""

    def __init__(self, field: str) -> None:
        self._start = re.compile(r'"' + re.escape(field) + r'"\s*:\s*"')
        self._buffer = ""
        self._pos: int | None = None  # where the next undecoded character of the value is
        self._done = False

    def feed(self, chunk: str) -> str:
        self._buffer += chunk
        if self._done:
            return ""
        if self._pos is None:
            found = self._start.search(self._buffer)
            if found is None:
                return ""
            self._pos = found.end()
        return self._decode()

    def _decode(self) -> str:
        assert self._pos is not None
        out: list[str] = []
        text, i = self._buffer, self._pos
        while i < len(text):
            char = text[i]
            if char == '"':
                self._done = True
                break
            if char != "\\":
                out.append(char)
                i += 1
                continue
            if i + 1 >= len(text):
                break  # the escape is split across chunks: wait for the rest
            if text[i + 1] == "u":
                if i + 6 > len(text):
                    break
                out.append(json.loads(f'"{text[i:i + 6]}"'))
                i += 6
            else:
                out.append(_ESCAPES.get(text[i + 1], text[i + 1]))
                i += 2
        self._pos = i
        return "".join(out)
