"""The parts of a chunk the assembler reads apart: a choice's state, content parts,
reasoning details, error payloads, the error for a malformed field; and a choice's
whole message once the stream is over."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from ..._exceptions import StreamError
from ..._redact import clip
from .._message import AssembledMessage, AssembledToolCall
from .._partial_call import PartialCall

__all__ = [
    "Choice",
    "assembled_message",
    "error_message",
    "malformed",
    "reasoning_texts",
    "text_parts",
]


class Choice:
    """One choice being assembled."""

    __slots__ = (
        "anonymous",
        "by_id",
        "by_index",
        "calls",
        "content",
        "content_seen",
        "details",
        "extra",
        "finish_reason",
        "reasoning",
        "reasoning_content",
        "reasoning_field",
        "refusal",
        "role",
    )

    def __init__(self) -> None:
        self.role: str | None = None
        self.content: list[str] = []
        self.content_seen = False
        self.refusal: list[str] = []
        self.reasoning: list[str] = []  # for readers: the first reasoning field of each delta
        # The wire-exact record that goes back (see `wire/_fields`): each reasoning field
        # under its own name, `reasoning_details` merged by block, unknown keys.
        self.reasoning_content: list[str] = []
        self.reasoning_field: list[str] = []  # the field named `reasoning`
        self.details: Any = None  # a `_wire_fields.Details` once a block arrives
        self.extra: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.calls: list[PartialCall] = []
        self.by_index: dict[int, PartialCall] = {}
        self.by_id: dict[str, PartialCall] = {}
        self.anonymous = False  # a fragment came without an index


def malformed(what: str, value: Any) -> StreamError:
    shown = _shown(value, lambda: repr(value))
    return StreamError(f"malformed chunk: {what}: {clip(shown)}", body=value)


def text_parts(parts: list[Any]) -> list[str]:
    texts = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, Mapping):
            text = part.get("text")
            if isinstance(text, str) and text and part.get("type", "text") == "text":
                texts.append(text)
    return texts


def reasoning_texts(details: list[Any]) -> list[str]:
    texts = []
    for detail in details:
        if isinstance(detail, Mapping):
            text = detail.get("text") or detail.get("summary")
            if isinstance(text, str) and text:
                texts.append(text)
    return texts


def error_message(error: Any) -> str:
    """The human-readable message of an error payload a server sent in a stream."""
    if isinstance(error, Mapping):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message
        return clip(_shown(error, lambda: json.dumps(error, default=str)), 500)
    return clip(error if isinstance(error, str) else _shown(error, lambda: str(error)), 500)


def _shown(value: Any, show: Callable[[], str]) -> str:
    """`show()`, or a note when `value` cannot be shown (nested too deep for `repr`)."""
    try:
        return show()
    except Exception:  # RecursionError, or a __str__ that fails
        return f"a {type(value).__name__} that cannot be shown"


def assembled_message(choice: Choice, new_id: Callable[[], str]) -> AssembledMessage:
    """The whole message of one choice; a call the server gave no id gets one now."""
    calls = []
    for call in choice.calls:
        if call.id is None:
            call.id = new_id()
            call.generated = True
        generated = call.generated
        arguments = call.arguments()
        if not arguments.strip():
            arguments = "{}"  # a tool without parameters, or arguments dropped
        assert call.id is not None
        oversized = call.size if call.oversized else None
        extra = dict(call.extra) if call.extra else None
        calls.append(
            AssembledToolCall(
                call.position, call.id, call.name, arguments, generated, oversized, extra
            )
        )
    content = "".join(choice.content) if choice.content_seen else None
    return AssembledMessage(
        content=content,
        tool_calls=tuple(calls),
        refusal="".join(choice.refusal) if choice.refusal else None,
        reasoning="".join(choice.reasoning) if choice.reasoning else None,
        role=choice.role or "assistant",
        extra=_wire_extra(choice),
    )


def _wire_extra(choice: Choice) -> dict[str, Any] | None:
    """What goes back beside role, content and calls: only what came, under its own name."""
    extra: dict[str, Any] = {}
    if choice.reasoning_content:
        extra["reasoning_content"] = "".join(choice.reasoning_content)
    if choice.reasoning_field:
        extra["reasoning"] = "".join(choice.reasoning_field)
    if choice.details is not None:
        extra["reasoning_details"] = choice.details.result()
    if choice.extra:
        extra.update(choice.extra)
    return extra or None
