"""Reading a request body as a JSON object, with the size limit enforced while reading (so a
chunked upload cannot get around Content-Length) and a clear error for each way it can fail —
hostile bodies included (deep nesting, endless numbers, NaN, bytes that are not UTF-8)."""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

from fastapi import Request

from shared.errors import MalformedBody, PayloadTooLarge, UnsupportedMediaType


def is_json(content_type: str | None) -> bool:
    """`application/json` (parameters such as charset allowed) or a `+json` type."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                           and media.endswith("+json"))


def _no_constant(name: str) -> NoReturn:
    raise MalformedBody(f"body is not valid JSON ({name} is not a JSON number)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 reads as inf, which JSON cannot carry back out
        raise MalformedBody("body is not valid JSON (a number is out of range)")
    return value


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _no_lone_surrogates(value: Any) -> None:
    """A `\\ud800` escape with no partner decodes to a str nothing can encode (Redis, logs)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedBody("body JSON holds an unpaired surrogate (\\ud800-\\udfff)") from None
    except RecursionError:
        raise MalformedBody("body JSON is nested too deeply") from None


def decode(raw: bytes) -> Any:
    """Parse JSON as strictly as RFC 8259 reads: UTF-8, no NaN or Infinity, finite numbers,
    no unpaired surrogates."""
    value = _parse(raw)
    if _SURROGATE_ESCAPE.search(raw):  # rare: only then pay for the exact check
        _no_lone_surrogates(value)
    return value


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite)
    except UnicodeDecodeError:
        raise MalformedBody("body is not valid UTF-8: send a JSON object") from None
    except json.JSONDecodeError as exc:
        raise MalformedBody(f"body is not valid JSON ({exc.msg} at position {exc.pos})") from None
    except RecursionError:
        raise MalformedBody("body JSON is nested too deeply") from None
    except ValueError:  # an integer of more digits than Python converts (4300)
        raise MalformedBody("body JSON has a number with too many digits") from None


async def read_object(request: Request, max_bytes: int) -> dict[str, Any]:
    if not is_json(request.headers.get("content-type")):
        raise UnsupportedMediaType("send the body as JSON, with 'Content-Type: application/json'")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"body larger than {max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body larger than {max_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise MalformedBody("body is empty: send a JSON object")
    value = decode(raw)
    if not isinstance(value, dict):
        raise MalformedBody(f"body must be a JSON object, not {type(value).__name__}")
    return value
