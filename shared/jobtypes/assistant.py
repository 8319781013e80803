"""`drought_assistant` and `forecast_explanation`: prose answers with a drought-aware system
prompt (cached, like the analysis method)."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field, StrictStr

from shared.jobtypes import prompts
from shared.jobtypes.base import JobType, Request
from shared.jobtypes.chat import ChatInput
from shared.schemas import Strict


def _system(text: str) -> list[dict[str, object]]:
    return [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]


class AssistantInput(ChatInput):
    """A chat turn; `system` (if given) is added after the assistant's own prompt."""


def build_assistant(data: BaseModel) -> Request:
    assert isinstance(data, AssistantInput)
    messages = [{"role": i.role, "content": i.content} for i in data.history]
    messages.append({"role": "user", "content": data.message})
    system = _system(prompts.ASSISTANT)
    if data.system:
        system.append({"type": "text", "text": data.system})
    return {"system": system, "messages": messages}


class ForecastInput(Strict):
    forecast: dict[str, float | int | str] = Field(min_length=1, max_length=50)
    region: StrictStr | None = Field(None, max_length=200)
    audience: Literal["farmer", "council", "analyst"] = "farmer"


def build_forecast(data: BaseModel) -> Request:
    assert isinstance(data, ForecastInput)
    where = f" for {data.region}" if data.region else ""
    content = (f"Explain this forecast{where} to a {data.audience}:\n"
               + json.dumps(data.forecast, indent=1))
    return {"system": _system(prompts.FORECAST), "messages": [{"role": "user", "content": content}]}


ASSISTANT = JobType(name="drought_assistant", input_model=AssistantInput,
                    build_request=build_assistant)
FORECAST = JobType(name="forecast_explanation", input_model=ForecastInput,
                   build_request=build_forecast, default_max_tokens=800)
