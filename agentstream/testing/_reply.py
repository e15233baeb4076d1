"""What a scripted model answers: `Reply`, the `ToolCall`s in it, and the `Fault` it can carry."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

__all__ = ["Dialect", "Fault", "Reply", "ToolCall"]

Dialect = Literal["openai", "mistral", "ollama"]
"""Whose streaming quirks a reply imitates."""

_DIALECTS: tuple[Dialect, ...] = ("openai", "mistral", "ollama")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model makes.

    A `str` `arguments` is sent verbatim (so a test can send broken JSON); a mapping is
    sent as JSON. With no `id`, the model gives the call a stable one (`call_1`, ...).
    """

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def __post_init__(self) -> None:
        if self.id == "":
            raise ValueError("ToolCall.id must be None or a non-empty string")

    @property
    def arguments_json(self) -> str:
        """The arguments exactly as they go on the wire."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Fault:
    """A failure the scripted model acts out instead of (or while) answering.

    Counts are in stream chunks (the `data:` events before `[DONE]`), so `drop_after=0`
    breaks the stream before any chunk. At most one of `drop_after`, `malformed_after`
    and `error_after` may be set; `status` stands alone.

    - `status`: answer this HTTP status with an OpenAI-shaped JSON error body, before any
      streaming.
    - `retry_after`: with `status`, send `Retry-After` (seconds) and `Retry-After-Ms`.
    - `drop_after`: send N chunks, then break the connection mid-body; the client sees a
      transport error (`httpx2.RemoteProtocolError`, which the SDK raises as
      `openai.APIConnectionError`).
    - `malformed_after`: after N chunks send `data: {"choices": [`, a line that is not
      JSON, then carry on with the rest of the stream.
    - `error_after`: after N chunks send `event: error` with an `{"error": {...}}` payload
      and end the body without `[DONE]`.
    - `stall_after` / `stall_seconds`: wait `stall_seconds` before the event that follows
      chunk N (or before the end of the body if there are fewer chunks).
    - `no_done`: end the body normally but without `data: [DONE]`.
    - `message`: the error message for `status` and `error_after` (a default otherwise).

    On a non-streaming request, `drop_after` breaks the body, `malformed_after` truncates
    the JSON, `error_after` answers HTTP 500, and `stall_seconds` delays the answer.
    """

    status: int | None = None
    retry_after: float | None = None
    drop_after: int | None = None
    malformed_after: int | None = None
    error_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 0.0
    no_done: bool = False
    message: str | None = None

    def __post_init__(self) -> None:
        counts = {
            "drop_after": self.drop_after,
            "malformed_after": self.malformed_after,
            "error_after": self.error_after,
            "stall_after": self.stall_after,
        }
        for name, value in counts.items():
            if value is not None and value < 0:
                raise ValueError(f"Fault.{name} must be >= 0, got {value}")
        if self.stall_seconds < 0:
            raise ValueError(f"Fault.stall_seconds must be >= 0, got {self.stall_seconds}")
        endings = [
            n for n in ("drop_after", "malformed_after", "error_after") if counts[n] is not None
        ]
        if len(endings) > 1:
            raise ValueError(f"Fault: set at most one of {', '.join(endings)}")
        if self.status is not None:
            if not 400 <= self.status <= 599:
                raise ValueError(f"Fault.status must be an HTTP error status, got {self.status}")
            if any(v is not None for v in counts.values()) or self.no_done:
                raise ValueError("Fault.status cannot be combined with stream faults")
        if self.retry_after is not None and (self.status is None or self.retry_after < 0):
            raise ValueError("Fault.retry_after needs a status and must be >= 0")


@dataclass(frozen=True, slots=True)
class Reply:
    """One assistant turn, streamed as Chat Completions chunks.

    Every field but `text` is keyword-only.
    """

    text: str | None = None
    """Assistant text, streamed word by word in `delta.content`."""
    _: KW_ONLY
    tool_calls: Sequence[ToolCall] = ()
    """Function calls, streamed after the text."""
    reasoning: str | None = None
    """Reasoning, streamed word by word in `delta.reasoning_content` before the text."""
    refusal: str | None = None
    """A refusal, streamed word by word in `delta.refusal`."""
    finish_reason: str | None = None
    """Overrides the default (`"tool_calls"` with tool calls, else `"stop"`; Ollama: `"stop"`)."""
    usage: Mapping[str, Any] | None = None
    """Sent verbatim; by default counts are made up at about four characters a token."""
    chunks: Sequence[Mapping[str, Any] | str] | None = None
    """Raw chunk dicts or `data:` payload strings, sent verbatim instead of the fields above."""
    piece_size: int = 4
    """Characters per tool-call argument fragment."""
    dialect: Dialect = "openai"
    """Whose streaming quirks to imitate: `"openai"`, `"mistral"` or `"ollama"`."""
    fault: Fault | None = None
    """A failure to act out while answering."""

    def __post_init__(self) -> None:
        if self.piece_size < 1:
            raise ValueError(f"Reply.piece_size must be >= 1, got {self.piece_size}")
        if self.dialect not in _DIALECTS:
            raise ValueError(f"Reply.dialect must be one of {_DIALECTS}, got {self.dialect!r}")
        if isinstance(self.chunks, str):
            raise TypeError("Reply.chunks must be a sequence of chunks, not a string")
        # Freeze the sequences so a Reply cannot change after it is scripted.
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))
        if self.chunks is not None:
            object.__setattr__(self, "chunks", tuple(self.chunks))
