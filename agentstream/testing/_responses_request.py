"""A Responses API request body read as Chat Completions messages and tools (no I/O).

The scripted model's policies read `ModelRequest.messages` and `.tools` in the chat
shape whichever wire the request came on; these functions make that shape from
`instructions`, `input` items and Responses-format `tools`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["chat_messages", "chat_tools"]


def _text(content: Any) -> str | None:
    """The text of a message's content: a string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts = [
        part["text"]
        for part in content
        if isinstance(part, Mapping) and isinstance(part.get("text"), str)
    ]
    return "".join(texts)


def _output(value: Any) -> str:
    """A `function_call_output`'s output: a string, or its text parts joined."""
    if isinstance(value, str):
        return value
    return _text(value) or ""


def chat_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The chat messages a Responses request body amounts to.

    `instructions` becomes a first system message; a string `input` one user message;
    message items keep their role (`developer` read as `system`) and text;
    `function_call` items become `tool_calls` of an assistant message (joined to the
    assistant message just before them); `function_call_output` items become `tool`
    messages by `call_id`. Reasoning and other items are left out.
    """
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    items = body.get("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    if not isinstance(items, list):
        return messages
    for item in items:
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            role = "system" if role == "developer" else role
            messages.append({"role": role, "content": _text(item.get("content"))})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments")},
            }
            last = messages[-1] if messages else None
            if last is None or last.get("role") != "assistant":
                last = {"role": "assistant", "content": None}
                messages.append(last)
            last.setdefault("tool_calls", []).append(call)
        elif kind == "function_call_output":
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": item.get("call_id"),
                    "content": _output(item.get("output")),
                }
            )
    return messages


def chat_tools(tools: list[Any]) -> list[dict[str, Any]]:
    """Responses `function` tools in the chat format; other tool types left out."""
    out = []
    for tool in tools:
        if not isinstance(tool, Mapping) or tool.get("type") != "function":
            continue
        if isinstance(tool.get("function"), Mapping):  # already in the chat format
            out.append(dict(tool))
            continue
        function = {key: tool[key] for key in ("name", "description", "parameters") if key in tool}
        if "strict" in tool:
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out
