"""Messages in the shape the GenAI conventions give them on spans (only when opted in).

OpenAI messages become `{"role": ..., "parts": [...]}` with text, tool call and tool
call response parts, serialised to a JSON string (span attributes cannot hold objects).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["input_messages", "output_messages", "to_json"]


def to_json(value: Any) -> str:
    """Compact JSON; what JSON cannot hold is written as its `str`."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def input_messages(messages: Iterable[Mapping[str, Any]]) -> str:
    """The conversation sent to the model, as the `gen_ai.input.messages` attribute."""
    return to_json([_message(message) for message in messages])


def output_messages(message: Mapping[str, Any], finish_reason: str | None) -> str:
    """The model's answer, as the `gen_ai.output.messages` attribute."""
    return to_json([{**_message(message), "finish_reason": finish_reason or ""}])


def _message(message: Mapping[str, Any]) -> dict[str, Any]:
    role = message.get("role", "")
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if role == "tool":
        if isinstance(content, list):  # a result with images or files: named, not copied
            content = _content_parts(content)
        parts.append(
            {"type": "tool_call_response", "id": message.get("tool_call_id"), "response": content}
        )
    else:
        parts.extend(_content_parts(content))
    refusal = message.get("refusal")
    if refusal:
        parts.append({"type": "refusal", "content": refusal})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": function.get("name"),
                "arguments": _arguments(function.get("arguments")),
            }
        )
    return {"role": role, "parts": parts}


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    if isinstance(content, list):
        # Multimodal content: text is kept; an image or a file is named, not copied.
        return [
            {"type": "text", "content": item.get("text", "")}
            if item.get("type") == "text"
            else {"type": str(item.get("type", "unknown"))}
            for item in content
            if isinstance(item, Mapping)
        ]
    return [{"type": "text", "content": str(content)}]


def _arguments(raw: Any) -> Any:
    """The arguments as an object where they parse, else as the text the model sent."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw
