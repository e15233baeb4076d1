"""The events an assembler produces while a response streams (see `_events` for them all).

Apart so that the wires, which make only these, import nothing of the run's events.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ReasoningDelta",
    "ReasoningDeltaTwin",
    "RefusalDelta",
    "ServerError",
    "StreamEvent",
    "TextDelta",
    "TextDeltaTwin",
    "ToolCallDelta",
    "ToolCallDeltaTwin",
    "ToolCallStarted",
]

# Events produced while a response streams (by the assembler) carry `step` and `choice`:
# `step` is the 1-based step of the run (0 when an assembler is used on its own) and
# `choice` the choice index (always 0 unless the request asked for n > 1).


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the assistant's visible text."""

    step: int
    choice: int
    text: str
    type: Literal["text_delta"] = field(default="text_delta", init=False)


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning, from servers that stream it separately."""

    step: int
    choice: int
    text: str
    type: Literal["reasoning_delta"] = field(default="reasoning_delta", init=False)


@dataclass(frozen=True, slots=True)
class RefusalDelta:
    """A piece of a refusal, sent instead of an answer."""

    step: int
    choice: int
    text: str
    type: Literal["refusal_delta"] = field(default="refusal_delta", init=False)


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    """The model began a tool call; its name is known, its arguments follow."""

    step: int
    choice: int
    index: int
    """Position of the call in the assistant message, 0-based."""
    id: str | None
    """The call id if the server has sent one yet."""
    name: str
    type: Literal["tool_call_started"] = field(default="tool_call_started", init=False)


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call's JSON arguments."""

    step: int
    choice: int
    index: int
    id: str | None
    name: str
    delta: str
    """The raw piece, as the server sent it."""
    partial: Any
    """Best-effort parse of the arguments so far (usually a dict), or None.

    Refreshed on every piece while the arguments are short (under 64 characters), then
    each time they have grown by an eighth, so the parsing stays linear in their length:
    for long arguments it can lag a few pieces behind `delta`. Treat it as read-only.
    """
    type: Literal["tool_call_delta"] = field(default="tool_call_delta", init=False)


@dataclass(frozen=True, slots=True)
class ServerError:
    """The server reported an error inside the stream."""

    step: int
    message: str
    body: Any
    type: Literal["server_error"] = field(default="server_error", init=False)


StreamEvent = (
    TextDelta | ReasoningDelta | RefusalDelta | ToolCallStarted | ToolCallDelta | ServerError
)
"""The events an assembler produces from a stream's chunks."""


def _unfrozen_twin(cls: type) -> Any:
    """An unfrozen dataclass with the same fields and slots as the frozen `cls`.

    A frozen dataclass sets each field through `object.__setattr__`, which costs three
    times a plain assignment, and the assembler makes an event for nearly every chunk.
    An instance built as the twin and then given `cls` as its class (their slots are
    the same, so CPython allows it) is a `cls` like any other: equal to one made by
    `cls(...)`, and as frozen.
    """
    specs: list[Any] = []
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING:
            specs.append((f.name, f.type))
        else:
            specs.append((f.name, f.type, field(default=f.default, init=f.init)))
    return dataclasses.make_dataclass(cls.__name__, specs, slots=True)


# Build one of these, then set its `__class__` to the event's: see `_unfrozen_twin`.
# (The assembler does it inline; a helper function would cost a third as much again.)
TextDeltaTwin = _unfrozen_twin(TextDelta)
ReasoningDeltaTwin = _unfrozen_twin(ReasoningDelta)
ToolCallDeltaTwin = _unfrozen_twin(ToolCallDelta)
