"""What a job type is, and the registry that maps type names to them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared.schemas import Priority

# A plain dict of `messages.create` keyword arguments (model, max_tokens, messages, system,
# tools, tool_choice …), built from the validated input.
Request = dict[str, Any]


class InvalidModelOutput(ValueError):
    """Claude's answer did not have the shape the job type asked for."""


def text_result(text: str, tool_inputs: dict[str, str]) -> dict[str, Any]:
    """The result of a job answered in prose."""
    return {"text": text}


@dataclass(frozen=True)
class JobType:
    """How one kind of job validates its input, asks Claude and reads the answer."""

    name: str
    input_model: type[BaseModel]
    build_request: Callable[[BaseModel], Request]
    default_priority: Priority = "interactive"
    default_max_tokens: int = 1024
    # (streamed text, tool inputs as JSON text by tool name) -> the job's `result`; raises
    # InvalidModelOutput when the answer has the wrong shape.
    read_result: Callable[[str, dict[str, str]], dict[str, Any]] = text_result
    # A string field of a forced tool call whose text streams to clients as tokens.
    streamed_field: str | None = None

    def validate_input(self, data: dict[str, Any]) -> BaseModel:
        return self.input_model.model_validate(data)


_REGISTRY: dict[str, JobType] = {}


def register(job_type: JobType) -> None:
    _REGISTRY[job_type.name] = job_type


def get(name: str) -> JobType | None:
    return _REGISTRY.get(name)


def names() -> list[str]:
    return sorted(_REGISTRY)
