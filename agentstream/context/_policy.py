"""What a user sets: `ContextPolicy`, the `TokenCounter` seam, the default `CharCounter`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .._exceptions import SetupError

__all__ = ["CharCounter", "ContextPolicy", "TokenCounter", "check_context"]

SUMMARY_PROMPT = (
    "You keep the memory of an agent whose conversation has grown too long. Summarise "
    "the part of it below for the agent itself: the task, what was done and found (tool "
    "results that still matter, with their exact figures, names and identifiers), what "
    "failed, and what remains to do. Write plain prose, at most a few hundred words; do "
    "not address anyone and do not add anything that is not in the conversation."
)


@runtime_checkable
class TokenCounter(Protocol):
    """Estimates the tokens a list of chat messages costs in a request."""

    def count(self, messages: Sequence[Mapping[str, Any]]) -> int: ...


class CharCounter:
    """The default estimate: a token per `chars_per_token` characters of each message's
    JSON. Cheap and dependency-free; the run calibrates it by the usage the server
    reports for each request (see docs/context.md)."""

    __slots__ = ("chars_per_token",)

    def __init__(self, chars_per_token: float = 4.0) -> None:
        if not chars_per_token > 0:
            raise SetupError(f"chars_per_token must be > 0, got {chars_per_token!r}")
        self.chars_per_token = chars_per_token

    def count(self, messages: Sequence[Mapping[str, Any]]) -> int:
        chars = 0
        for message in messages:
            chars += len(json.dumps(message, ensure_ascii=False, default=str))
        return int(chars / self.chars_per_token) + 1


@dataclass(frozen=True, slots=True)
class ContextPolicy:
    """Keep each request of a run within `max_tokens` of input (`Agent(context=...)`).

    Past `max_tokens` (estimated), the request is built from a compacted view of the
    conversation, aiming at `target` times `max_tokens`: the oldest tool results are
    shortened to their first `keep_chars` characters, then dropped (each with a note
    saying so), then the oldest turns are summarised by the model (one more request).
    A tool call and its result stay together; the leading instructions, the first and
    the last user message and the step just finished are never touched.
    `RunState.messages` keeps the whole conversation.
    """

    max_tokens: int
    """The budget of one request's input, in tokens."""
    target: float = 0.75
    """The share of `max_tokens` a compaction aims at, so the next steps have room."""
    keep_chars: int = 200
    """Characters kept of a shortened tool result (before its note)."""
    summarise: bool = True
    """Whether the oldest turns may be summarised by the model when shortening is not enough."""
    summary_prompt: str = SUMMARY_PROMPT
    """The instructions of the summary request."""
    counter: TokenCounter = field(default_factory=CharCounter)
    """What estimates the tokens of messages not yet sent (calibrated by reported usage)."""
    server: bool = False
    """Responses API: also ask the server to compact past `max_tokens` (`context_management`)."""

    def __post_init__(self) -> None:
        tokens = self.max_tokens
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
            raise SetupError(f"ContextPolicy.max_tokens must be an int >= 1, got {tokens!r:.40}")
        if not 0.1 <= self.target <= 1.0:
            raise SetupError(f"ContextPolicy.target must be within 0.1 and 1, got {self.target!r}")
        if not isinstance(self.keep_chars, int) or self.keep_chars < 0:
            raise SetupError(f"ContextPolicy.keep_chars must be >= 0, got {self.keep_chars!r}")
        if not isinstance(self.counter, TokenCounter):
            raise SetupError("ContextPolicy.counter needs a count(messages) -> int method")
        if not isinstance(self.summary_prompt, str) or not self.summary_prompt:
            raise SetupError("ContextPolicy.summary_prompt must be a non-empty string")


def check_context(context: object) -> ContextPolicy | None:
    """`Agent(context=...)`: a `ContextPolicy`, or None."""
    if context is not None and not isinstance(context, ContextPolicy):
        raise SetupError(f"context takes ContextPolicy(max_tokens=...), not {context!r:.60}")
    return context
