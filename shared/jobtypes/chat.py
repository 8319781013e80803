"""`chat`: one message, with optional history and system prompt, answered as text."""

from __future__ import annotations

from pydantic import BaseModel, Field, StrictStr, field_validator

from shared.jobtypes.base import JobType, Request
from shared.schemas import HistoryItem, Strict


class ChatInput(Strict):
    message: StrictStr = Field(min_length=1, max_length=200_000)
    history: list[HistoryItem] = Field(default_factory=list, max_length=500)
    system: StrictStr | None = Field(None, max_length=200_000)

    @field_validator("history")
    @classmethod
    def _starts_with_user(cls, history: list[HistoryItem]) -> list[HistoryItem]:
        # Claude requires a conversation to open with the user's turn.
        if history and history[0].role != "user":
            raise ValueError("history must start with a 'user' message")
        return history


def build_request(data: BaseModel) -> Request:
    assert isinstance(data, ChatInput)
    messages = [{"role": item.role, "content": item.content} for item in data.history]
    messages.append({"role": "user", "content": data.message})
    request: Request = {"messages": messages}
    if data.system:
        request["system"] = data.system
    return request


CHAT = JobType(name="chat", input_model=ChatInput, build_request=build_request)
