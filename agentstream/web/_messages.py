"""The conversation as the AI SDK's UI messages, and as OpenAI Chat Completions messages.

`to_openai(ui_messages)` reads what `useChat` sends (each message a role and a list of
parts); `to_ui(messages)` is the way back. Each step of an assistant message (the parts
after a `step-start`) becomes one assistant message with its tool calls, followed by one
tool message per call. A call the conversation left without an output is answered with a
note, so that the conversation stays one a server accepts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from agentstream import Approval

__all__ = [
    "MessageError",
    "approvals_of",
    "last_assistant_id",
    "restore_wire",
    "to_openai",
    "to_ui",
    "wire_messages",
]

_NO_OUTPUT = "not run: the conversation holds no result for this call"
_ROLES = ("system", "user", "assistant")
_MESSAGE_KEYS = frozenset({"role", "content", "tool_calls", "refusal"})
_CALL_KEYS = frozenset({"id", "type", "function"})


class MessageError(ValueError):
    """A UI message that cannot be read; the message says which and why."""


def to_openai(ui_messages: object) -> list[dict[str, Any]]:
    """OpenAI messages for a list of UI messages (raises `MessageError`)."""
    if not isinstance(ui_messages, list) or not ui_messages:
        raise MessageError("'messages' must be a non-empty list of UI messages")
    out: list[dict[str, Any]] = []
    for number, message in enumerate(ui_messages):
        if not isinstance(message, Mapping) or message.get("role") not in _ROLES:
            raise MessageError(f"message {number} needs a role among {', '.join(_ROLES)}")
        parts = message.get("parts")
        if not isinstance(parts, list) or not all(isinstance(p, Mapping) for p in parts):
            raise MessageError(f"message {number} needs a list of parts")
        if message["role"] == "assistant":
            out.extend(_assistant(parts))
        else:
            out.append({"role": message["role"], "content": _text(parts)})
    return out


def approvals_of(ui_messages: Sequence[Any]) -> dict[str, Approval]:
    """The decisions the last message holds: its tool parts in the `approval-responded` state.

    `useChat`'s `addToolApprovalResponse` sets `approval: {id, approved, reason}` on the
    part; the id is the call id (the `approvalId` the stream sent). Empty when the last
    message is not an assistant message with such parts (then it is a new turn).
    """
    if not ui_messages or not isinstance(ui_messages[-1], Mapping):
        return {}
    last = ui_messages[-1]
    if last.get("role") != "assistant" or not isinstance(last.get("parts"), list):
        return {}
    decided: dict[str, Approval] = {}
    for part in last["parts"]:
        if not isinstance(part, Mapping) or part.get("state") != "approval-responded":
            continue
        approval = part.get("approval")
        if not isinstance(approval, Mapping) or not isinstance(approval.get("id"), str):
            raise MessageError("a tool part in the approval-responded state needs approval.id")
        if not isinstance(approval.get("approved"), bool):
            raise MessageError("a tool part's approval needs 'approved': true or false")
        reason = approval.get("reason")
        text = reason if isinstance(reason, str) and reason.strip() else None
        decided[approval["id"]] = Approval(approval["approved"], text)
    return decided


def last_assistant_id(ui_messages: Sequence[Any]) -> str | None:
    """The id of the last message if it is an assistant's (a continuation streams into it)."""
    last = ui_messages[-1] if ui_messages else None
    if isinstance(last, Mapping) and last.get("role") == "assistant":
        message_id = last.get("id")
        return message_id if isinstance(message_id, str) and message_id else None
    return None


def _text(parts: Sequence[Mapping[str, Any]]) -> str:
    return "".join(
        part["text"]
        for part in parts
        if part.get("type") == "text" and isinstance(part.get("text"), str)
    )


def _assistant(parts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    steps: list[list[Mapping[str, Any]]] = [[]]
    for part in parts:
        if part.get("type") == "step-start":
            if steps[-1]:
                steps.append([])
        else:
            steps[-1].append(part)
    out: list[dict[str, Any]] = []
    for step in steps:
        calls = [part for part in step if _is_tool(part)]
        text = _text(step)
        if text or calls:
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                message["tool_calls"] = [_call(part) for part in calls]
            out.append(message)
            out.extend(
                {"role": "tool", "tool_call_id": str(part["toolCallId"]), "content": _output(part)}
                for part in calls
            )
        # A message sent during this step joined the conversation after its results.
        out.extend({"role": "user", "content": said} for said in _steered(step))
    return out


def _steered(step: Sequence[Mapping[str, Any]]) -> list[str]:
    """The texts of the messages sent to the run during a step and delivered after it."""
    texts = []
    for part in step:
        data = part.get("data") if part.get("type") == "data-steer" else None
        if isinstance(data, Mapping) and data.get("status") == "delivered":
            text = data.get("text")
            if isinstance(text, str) and text:
                texts.append(text)
    return texts


def _is_tool(part: Mapping[str, Any]) -> bool:
    kind = part.get("type")
    return (
        isinstance(kind, str)
        and (kind.startswith("tool-") or kind == "dynamic-tool")
        and isinstance(part.get("toolCallId"), str)
    )


def _tool_name(part: Mapping[str, Any]) -> str:
    if part.get("type") == "dynamic-tool":
        return str(part.get("toolName", ""))
    return str(part["type"]).removeprefix("tool-")


def _call(part: Mapping[str, Any]) -> dict[str, Any]:
    raw = part.get("input")
    arguments = raw if isinstance(raw, str) else json.dumps(raw if raw is not None else {})
    return {
        "id": str(part["toolCallId"]),
        "type": "function",
        "function": {"name": _tool_name(part), "arguments": arguments},
    }


def _output(part: Mapping[str, Any]) -> str:
    state = part.get("state")
    if state == "output-available":
        output = part.get("output")
        return output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
    if state == "output-error":
        return str(part.get("errorText", "the tool failed"))
    if state == "output-denied" or (state == "approval-responded" and not _approved(part)):
        return "not run: the user denied this call"
    return _NO_OUTPUT


def _approved(part: Mapping[str, Any]) -> bool:
    approval = part.get("approval")
    return isinstance(approval, Mapping) and approval.get("approved") is True


def to_ui(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """UI messages for OpenAI messages: consecutive assistant and tool messages form one."""
    out: list[dict[str, Any]] = []
    outputs = {
        str(m.get("tool_call_id")): _result(m.get("content"))
        for m in messages
        if m.get("role") == "tool"
    }
    for number, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            continue
        if role != "assistant":
            content = message.get("content")
            text = content if isinstance(content, str) else _content_text(content)
            part = {"type": "text", "text": text, "state": "done"}
            out.append({"id": f"m{number}", "role": role, "parts": [part]})
            continue
        if not out or out[-1]["role"] != "assistant":
            out.append({"id": f"m{number}", "role": "assistant", "parts": []})
        parts = out[-1]["parts"]
        parts.append({"type": "step-start"})
        if message.get("content"):
            parts.append({"type": "text", "text": str(message["content"]), "state": "done"})
        for call in message.get("tool_calls") or ():
            parts.append(_tool_part(call, outputs.get(str(call.get("id")))))
    return out


def _result(content: object) -> object:
    """A tool message's content for the page: a result with images or files (a list of
    parts) as its text, which names them; their data is not sent again."""
    return _content_text(content) if isinstance(content, list) else content


def _content_text(content: object) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return ""


def _tool_part(call: Mapping[str, Any], output: object) -> dict[str, Any]:
    function = call.get("function") or {}
    raw = function.get("arguments") or "{}"
    try:
        arguments: Any = json.loads(raw)
    except ValueError:
        arguments = raw
    part: dict[str, Any] = {
        "type": f"tool-{function.get('name', '')}",
        "toolCallId": str(call.get("id")),
        "input": arguments,
    }
    if output is None:
        part["state"] = "input-available"
    else:
        part["state"] = "output-available"
        part["output"] = output
    return part


def wire_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The assistant messages of a conversation that hold fields a UI message cannot:
    reasoning as the server sent it, `extra_content` on calls (see docs/round-trips.md).

    The server keeps them per chat and `restore_wire` puts them back on the conversation
    the page sends, which holds only text and tool parts.
    """
    return [
        dict(message)
        for message in messages
        if message.get("role") == "assistant"
        and (
            not _MESSAGE_KEYS.issuperset(message)
            or any(
                isinstance(call, Mapping) and not _CALL_KEYS.issuperset(call)
                for call in message.get("tool_calls") or ()
            )
        )
    ]


def restore_wire(
    messages: list[dict[str, Any]], kept: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """`messages` (rebuilt from UI messages) with the kept fields of their assistant
    messages back: matched by their tool call ids, or by their text when they have none."""
    by_calls: dict[tuple[str, ...], Mapping[str, Any]] = {}
    by_text: dict[object, list[Mapping[str, Any]]] = {}
    for message in kept:
        ids = _ids(message)
        if ids:
            by_calls[ids] = message
        else:
            by_text.setdefault(message.get("content"), []).append(message)
    out = []
    for message in messages:
        if message.get("role") == "assistant":
            ids = _ids(message)
            texts = by_text.get(message.get("content"))
            match = by_calls.get(ids) if ids else (texts.pop(0) if texts else None)
            if match is not None:
                message = _with_wire(message, match)
        out.append(message)
    return out


def _ids(message: Mapping[str, Any]) -> tuple[str, ...]:
    calls = message.get("tool_calls") or ()
    return tuple(str(call.get("id")) for call in calls if isinstance(call, Mapping))


def _with_wire(message: dict[str, Any], kept: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(message)
    merged.update({k: v for k, v in kept.items() if k not in _MESSAGE_KEYS})
    extras = {
        str(call.get("id")): {k: v for k, v in call.items() if k not in _CALL_KEYS}
        for call in kept.get("tool_calls") or ()
        if isinstance(call, Mapping)
    }
    if "tool_calls" in merged:
        merged["tool_calls"] = [
            {**call, **extras.get(call["id"], {})} for call in merged["tool_calls"]
        ]
    return merged
