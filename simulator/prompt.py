"""Input token accounting: the prompt as an ordered list of pieces (tools, system, messages).

Counting piece by piece lets one walk serve three purposes that must agree: `usage.input_tokens`,
`/v1/messages/count_tokens`, and prompt-cache prefixes (a `cache_control` marker ends a prefix
at its piece, in the API's tools -> system -> messages order).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from simulator.textgen import canonical, count_tokens

IMAGE_TOKENS = 1600  # a ~1.2 megapixel image, per the API's width*height/750 rule of thumb
DOCUMENT_TOKENS = 3000
_TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}


@dataclass(frozen=True, slots=True)
class Piece:
    """One countable unit of the prompt; `ttl` is set when it carries a cache breakpoint.

    `content` (the block minus its marker) is kept rather than hashed: only prompts that carry
    a breakpoint ever need the hash, and most requests on the hot path carry none.
    """

    tokens: int
    content: Any
    ttl: float | None = None

    def key(self) -> bytes:
        return canonical(self.content)


def prompt_pieces(
    tools: list[dict[str, Any]],
    system: Any,
    messages: list[dict[str, Any]],
    cache_control: Any = None,
) -> list[Piece]:
    """The prompt in cache order; a top-level `cache_control` marks the very last piece."""
    pieces = [_piece(tool, _tool_tokens(tool)) for tool in tools]
    pieces.extend(_piece(block, block_tokens(block)) for block in _system_blocks(system))
    for message in messages:
        for block in _content_blocks(message.get("content")):
            pieces.append(_piece({"role": message.get("role"), **block}, block_tokens(block)))
    ttl = breakpoint_ttl(cache_control)
    if ttl is not None and pieces:
        last = pieces[-1]
        pieces[-1] = Piece(last.tokens, last.content, ttl)
    return pieces


def total_tokens(pieces: list[Piece]) -> int:
    return sum(piece.tokens for piece in pieces)


def breakpoint_ttl(marker: Any) -> float | None:
    """Seconds a `cache_control` marker keeps its prefix, or None if it is not one."""
    if not isinstance(marker, dict) or marker.get("type") != "ephemeral":
        return None
    return _TTL_SECONDS.get(str(marker.get("ttl", "5m")), 300.0)


def block_tokens(block: dict[str, Any]) -> int:
    """Tokens of one content block, by what the model would actually read from it."""
    kind = block.get("type")
    if kind == "text":
        return count_tokens(str(block.get("text", "")))
    if kind == "tool_use":
        return count_tokens(str(block.get("name", "")) + json.dumps(block.get("input", {})))
    if kind == "tool_result":
        return sum(block_tokens(b) for b in _content_blocks(block.get("content", ""))) or 1
    if kind == "image":
        return IMAGE_TOKENS
    if kind == "document":
        source = block.get("source") or {}
        if isinstance(source, dict) and source.get("type") == "text":
            return count_tokens(str(source.get("data", "")))
        return DOCUMENT_TOKENS
    if kind == "thinking":
        return count_tokens(str(block.get("thinking", "")))
    return count_tokens(json.dumps(_without_cache_control(block), sort_keys=True))


def _tool_tokens(tool: dict[str, Any]) -> int:
    return count_tokens(json.dumps(_without_cache_control(tool), sort_keys=True))


def _piece(block: dict[str, Any], tokens: int) -> Piece:
    ttl = breakpoint_ttl(block.get("cache_control"))
    return Piece(tokens, _without_cache_control(block), ttl)


def _without_cache_control(block: dict[str, Any]) -> dict[str, Any]:
    if "cache_control" not in block:
        return block
    return {k: v for k, v in block.items() if k != "cache_control"}


def _system_blocks(system: Any) -> Iterator[dict[str, Any]]:
    if isinstance(system, str):
        if system:
            yield {"type": "text", "text": system}
    elif isinstance(system, list):
        yield from (b for b in system if isinstance(b, dict))


def _content_blocks(content: Any) -> Iterator[dict[str, Any]]:
    if isinstance(content, str):
        yield {"type": "text", "text": content}
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, str):
                yield {"type": "text", "text": block}
            elif isinstance(block, dict):
                yield block
