"""Validating user input into pydantic models with one clear error naming the field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """`('body', 'input', 'history', 0, 'role')` → `history.0.role`: the name a user typed."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    if parts and parts[0] == "input" and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or "body"


def parse(model: type[M], data: Any, prefix: tuple[str | int, ...] = ()) -> M:
    """Validate into `model`, turning the first problem into a 422 that names its field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = field_path((*prefix, *first["loc"]))
        raise InvalidInput(f"{field}: {first['msg']}", field=field) from None
