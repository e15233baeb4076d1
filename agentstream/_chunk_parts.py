"""The parts of a chunk the assembler reads apart: a choice's state, content parts,
reasoning details, error payloads, and the error for a malformed field."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from ._exceptions import StreamError
from ._partial_call import PartialCall
from ._redact import clip

__all__ = ["Choice", "error_message", "malformed", "reasoning_texts", "text_parts"]


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
        # The wire-exact record that goes back (see `_wire_fields`): each reasoning field
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
