"""Reading a request body as a JSON object, with the size limit enforced while reading (so a
chunked upload cannot get around Content-Length) and a clear error for each way it can fail."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from shared.errors import MalformedBody, PayloadTooLarge


async def read_object(request: Request, max_bytes: int) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
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
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise MalformedBody("body is not valid UTF-8: send a JSON object") from None
    except json.JSONDecodeError as exc:
        raise MalformedBody(f"body is not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(value, dict):
        raise MalformedBody(f"body must be a JSON object, not {type(value).__name__}")
    return value
