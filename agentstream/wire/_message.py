"""The assembled result of a stream: messages, tool calls, choices, usage.

Plain frozen values; `StreamAssembler` (in `chat/_assemble`) builds them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._usage import Usage

__all__ = ["AssembledChoice", "AssembledMessage", "AssembledResponse", "AssembledToolCall"]

_REASONING = frozenset({"reasoning_content", "reasoning", "reasoning_details"})


@dataclass(frozen=True, slots=True)
class AssembledToolCall:
    """One complete tool call as the server sent it (arguments not validated)."""

    index: int
    id: str
    name: str | None
    """None when the server never sent a name: such a call can only be reported invalid."""
    arguments: str
    """The raw JSON arguments; an empty string from the server becomes `"{}"`."""
    id_generated: bool = False
    """True when the server sent no usable id (or reused one) and one was made up."""
    oversized: int | None = None
    """The arguments' length in characters when it passed the assembler's
    `max_argument_size`; they were dropped as they streamed and `arguments` is `"{}"`."""
    extra: Mapping[str, Any] | None = None
    """Keys of the call's fragments beyond id, type and function (Gemini's
    `extra_content` with its thought signature), as they came; they go back on the call."""

    def to_dict(self) -> dict[str, Any]:
        """The call in OpenAI message format, with its `extra` keys."""
        data: dict[str, Any] = {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }
        if self.extra:
            data.update(copy.deepcopy(dict(self.extra)))
        return data


@dataclass(frozen=True, slots=True)
class AssembledMessage:
    """An assistant message assembled from a stream."""

    content: str | None = None
    tool_calls: tuple[AssembledToolCall, ...] = ()
    refusal: str | None = None
    reasoning: str | None = None
    """The reasoning for readers: of each delta, `reasoning_content` or `reasoning`, else the
    text of its `reasoning_details`. What goes back to the server is in `extra`."""
    role: str = "assistant"
    extra: Mapping[str, Any] | None = None
    """The message's fields beyond role, content, tool calls and refusal, exactly as they
    came: `reasoning_content` and `reasoning` (each the concatenation of its deltas),
    `reasoning_details` (merged by block), `extra_content` and other keys a server added.
    They go back with the message (see docs/round-trips.md)."""

    def to_dict(self, *, include_reasoning: bool = False) -> dict[str, Any]:
        """The message in OpenAI format, ready to append to a conversation.

        It carries `extra` as it came, and nothing the stream did not hold: servers that
        do not know a reasoning field refuse it. `include_reasoning` adds `reasoning` as
        `reasoning_content` when no reasoning field came (a message built by hand).
        """
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            data["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.refusal is not None:
            data["refusal"] = self.refusal
        if self.extra:
            data.update(copy.deepcopy(dict(self.extra)))
        if include_reasoning and self.reasoning is not None and not _REASONING.intersection(data):
            data["reasoning_content"] = self.reasoning
        return data


@dataclass(frozen=True, slots=True)
class AssembledChoice:
    """One choice of a response (there is one unless the request set n > 1)."""

    index: int
    message: AssembledMessage
    finish_reason: str | None


@dataclass(frozen=True, slots=True)
class AssembledResponse:
    """Everything a stream said, merged."""

    choices: tuple[AssembledChoice, ...]
    usage: Mapping[str, Any] | None
    """The last usage object the server sent, as sent."""
    id: str | None
    model: str | None
    errors: tuple[Any, ...]
    """Error payloads the server sent inside the stream."""

    @property
    def message(self) -> AssembledMessage:
        """The first choice's message (an empty one if the stream had no choice)."""
        return self.choices[0].message if self.choices else AssembledMessage()

    @property
    def finish_reason(self) -> str | None:
        """The first choice's finish reason."""
        return self.choices[0].finish_reason if self.choices else None

    @property
    def usage_summary(self) -> Usage | None:
        """`usage` as a `Usage` value."""
        return Usage.from_dict(self.usage) if self.usage is not None else None
