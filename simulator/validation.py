"""Request validation for `/v1/messages`, `count_tokens` and batch entries.

A client bug should fail against the simulator exactly as it would against the API: a 400
`invalid_request_error` whose message names the offending field (`max_tokens: Field required`).
Plain dict checks rather than pydantic keep the hot path cheap at hundreds of requests a second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from simulator.wire import invalid

MAX_TOKENS_LIMIT = 128_000
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_ROLES = ("user", "assistant")
_CHOICE_TYPES = ("auto", "any", "tool", "none")


@dataclass(slots=True)
class MessageRequest:
    """The fields of a Messages request the simulator acts on, already checked."""

    model: str
    max_tokens: int
    messages: list[dict[str, Any]]
    system: Any = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    temperature: float | None = None
    stream: bool = False
    stop_sequences: list[str] | None = None
    output_schema: dict[str, Any] | None = None
    cache_control: Any = None


def parse_message_request(body: Any, *, count_only: bool = False) -> MessageRequest:
    """Check a request body, raising ApiError(400) naming the first bad field."""
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    model = _model(body)
    max_tokens = 1 if count_only else _max_tokens(body)
    messages = _messages(body)
    tools = _tools(body.get("tools"))
    return MessageRequest(
        model=model,
        max_tokens=max_tokens,
        messages=messages,
        system=_system(body.get("system")),
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice"), tools),
        temperature=_temperature(body.get("temperature")),
        stream=_stream(body.get("stream"), count_only),
        stop_sequences=_stop_sequences(body.get("stop_sequences")),
        output_schema=_output_schema(body.get("output_config")),
        cache_control=body.get("cache_control"),
    )


def _model(body: dict[str, Any]) -> str:
    if "model" not in body:
        raise invalid("model: Field required")
    model = body["model"]
    if not isinstance(model, str) or not model:
        raise invalid("model: Input should be a valid, non-empty string")
    return model


def _max_tokens(body: dict[str, Any]) -> int:
    if "max_tokens" not in body:
        raise invalid("max_tokens: Field required")
    value = body["max_tokens"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid("max_tokens: Input should be a valid integer")
    if value < 1:
        raise invalid("max_tokens: Input should be greater than or equal to 1")
    if value > MAX_TOKENS_LIMIT:
        raise invalid(
            f"max_tokens: {value} > {MAX_TOKENS_LIMIT}, which is the maximum allowed number "
            "of output tokens for this model"
        )
    return value


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    if "messages" not in body:
        raise invalid("messages: Field required")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise invalid("messages: Input should be a valid list")
    if not messages:
        raise invalid("messages: at least one message is required")
    for index, message in enumerate(messages):
        _message(index, message)
    if messages[0]["role"] != "user":
        raise invalid("messages: first message must use the \"user\" role")
    return messages


def _message(index: int, message: Any) -> None:
    where = f"messages.{index}"
    if not isinstance(message, dict):
        raise invalid(f"{where}: Input should be a valid dictionary")
    if message.get("role") not in _ROLES:
        raise invalid(f"{where}.role: Input should be 'user' or 'assistant'")
    if "content" not in message:
        raise invalid(f"{where}.content: Field required")
    _content(f"{where}.content", message["content"])


def _content(where: str, content: Any) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise invalid(f"{where}: Input should be a valid string or list of content blocks")
    for index, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise invalid(f"{where}.{index}.type: Field required")
        if block["type"] == "text" and not isinstance(block.get("text"), str):
            raise invalid(f"{where}.{index}.text: Field required")
        if block["type"] == "tool_result" and not isinstance(block.get("tool_use_id"), str):
            raise invalid(f"{where}.{index}.tool_use_id: Field required")


def _system(system: Any) -> Any:
    if system is None or isinstance(system, str):
        return system
    if isinstance(system, list):
        for index, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text":
                raise invalid(f"system.{index}.type: Input should be 'text'")
            if not isinstance(block.get("text"), str):
                raise invalid(f"system.{index}.text: Field required")
        return system
    raise invalid("system: Input should be a valid string or list of text blocks")


def _tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise invalid("tools: Input should be a valid list")
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid(f"tools.{index}: Input should be a valid dictionary")
        name = tool.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise invalid(f"tools.{index}.name: String should match pattern '{_TOOL_NAME.pattern}'")
        is_custom = tool.get("type") in (None, "custom")
        if is_custom and not isinstance(tool.get("input_schema"), dict):
            raise invalid(f"tools.{index}.custom.input_schema: Field required")
    return tools


def _tool_choice(choice: Any, tools: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if not isinstance(choice, dict) or choice.get("type") not in _CHOICE_TYPES:
        raise invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    kind = choice["type"]
    if kind in ("any", "tool") and not tools:
        raise invalid(f"tool_choice: tool_choice.type '{kind}' requires `tools` to be provided")
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise invalid("tool_choice.tool.name: Field required")
        if all(tool.get("name") != name for tool in tools or []):
            raise invalid(f"tool_choice.name: Tool '{name}' not found in provided tools")
    return choice


def _temperature(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid("temperature: Input should be a valid number")
    if not 0 <= value <= 1:
        raise invalid("temperature: range: 0..1")
    return float(value)


def _stream(value: Any, count_only: bool) -> bool:
    if value is None or count_only:
        return False
    if not isinstance(value, bool):
        raise invalid("stream: Input should be a valid boolean")
    return value


def _stop_sequences(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise invalid("stop_sequences: Input should be a valid list of strings")
    return value


def _output_schema(config: Any) -> dict[str, Any] | None:
    """The JSON schema of `output_config.format` (structured outputs), if one was asked for."""
    if config is None:
        return None
    if not isinstance(config, dict):
        raise invalid("output_config: Input should be a valid dictionary")
    fmt = config.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise invalid("output_config.format.type: Input should be 'json_schema'")
    if not isinstance(fmt.get("schema"), dict):
        raise invalid("output_config.format.schema: Field required")
    return dict(fmt["schema"])
