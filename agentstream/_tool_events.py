"""The events of a run's tool calls: from a call found ready to its result (see `_events`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ._stream_events import ReasoningDelta as ReasoningDelta
from ._stream_events import RefusalDelta as RefusalDelta
from ._stream_events import ServerError as ServerError
from ._stream_events import StreamEvent as StreamEvent
from ._stream_events import TextDelta as TextDelta
from ._stream_events import ToolCallDelta as ToolCallDelta
from ._stream_events import ToolCallStarted as ToolCallStarted

if TYPE_CHECKING:
    from .state._approvals import ApprovalRequest

__all__ = [
    "ApprovalRequested",
    "ToolCallApproved",
    "ToolCallDenied",
    "ToolCallInvalid",
    "ToolCallReady",
    "ToolCancelled",
    "ToolFinished",
    "ToolPaused",
    "ToolProgress",
    "ToolQueued",
    "ToolStarted",
]


@dataclass(frozen=True, slots=True)
class ToolCallReady:
    """A completed tool call whose arguments fit its tool's schema."""

    step: int
    index: int
    id: str
    name: str
    arguments: dict[str, Any]
    """The validated arguments, as the tool will receive them."""
    raw_arguments: str
    type: Literal["tool_call_ready"] = field(default="tool_call_ready", init=False)


@dataclass(frozen=True, slots=True)
class ToolCallInvalid:
    """A completed tool call that will not run; `error` is what the model is told."""

    step: int
    index: int
    id: str
    name: str | None
    raw_arguments: str
    error: str
    type: Literal["tool_call_invalid"] = field(default="tool_call_invalid", init=False)


@dataclass(frozen=True, slots=True)
class ApprovalRequested:
    """A valid call whose tool needs a person's approval before it runs."""

    step: int
    index: int
    id: str
    name: str
    arguments: dict[str, Any]
    """The validated arguments, as the tool would receive them."""
    type: Literal["approval_requested"] = field(default="approval_requested", init=False)


@dataclass(frozen=True, slots=True)
class ToolCallApproved:
    """A call that needed approval was approved; it will run."""

    step: int
    index: int
    id: str
    name: str
    type: Literal["tool_call_approved"] = field(default="tool_call_approved", init=False)


@dataclass(frozen=True, slots=True)
class ToolCallDenied:
    """A call that needed approval was denied; `output` is what the model is told."""

    step: int
    index: int
    id: str
    name: str
    reason: str | None
    output: str
    type: Literal["tool_call_denied"] = field(default="tool_call_denied", init=False)


@dataclass(frozen=True, slots=True)
class ToolStarted:
    """A tool began executing."""

    step: int
    index: int
    id: str
    name: str
    arguments: dict[str, Any]
    type: Literal["tool_started"] = field(default="tool_started", init=False)


@dataclass(frozen=True, slots=True)
class ToolFinished:
    """A tool finished: `output` is the text sent back to the model."""

    step: int
    index: int
    id: str
    name: str
    output: str
    value: Any
    """What the tool returned (None if it raised)."""
    error: BaseException | None
    """The exception the tool raised, with its traceback, or None."""
    duration: float
    """Seconds the tool ran."""
    truncated: bool = False
    """Whether `output` was cut to the agent's `max_result_size` (the note says so)."""
    reused: bool = False
    """Whether this is the result of the same call (same idempotent tool, same arguments)
    from a broken attempt at this step, reused instead of running the tool again."""
    media: tuple[Any, ...] = ()
    """The images and files (`Image`, `File`) the tool returned that go to the model."""
    type: Literal["tool_finished"] = field(default="tool_finished", init=False)

    @property
    def ok(self) -> bool:
        """Whether the tool returned normally."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class ToolProgress:
    """A running tool reported how far it has got (coalesced: the latest report wins)."""

    step: int
    index: int
    id: str
    name: str
    fraction: float | None
    """Share of the work done, from 0 to 1, if the tool said."""
    message: str | None
    """A short status line, if the tool gave one."""
    output: str | None
    """The partial output so far, if the tool gave it."""
    type: Literal["tool_progress"] = field(default="tool_progress", init=False)


@dataclass(frozen=True, slots=True)
class ToolCancelled:
    """A call was stopped: withdrawn (started early), or cancelled by `AgentRun.cancel_call`.

    Withdrawn (`answered` false): the step's attempt ended broken (a cut stream, an
    error, a stall, `length`, `content_filter`) or the call turned out different from
    the one started; no result of it reaches the model. With `finished` the tool had
    already ended and its result is dropped; otherwise it was stopped while running.

    Cancelled (`answered` true): `reason` is the one given to `cancel_call` (empty if
    none); a `ToolFinished` follows whose output tells the model the user cancelled it.
    """

    step: int
    index: int
    id: str
    name: str
    reason: str
    finished: bool
    answered: bool = False
    """Whether the model is told the call was cancelled (`cancel_call`) rather than
    never hearing of it (a withdrawn early call)."""
    type: Literal["tool_cancelled"] = field(default="tool_cancelled", init=False)


@dataclass(frozen=True, slots=True)
class ToolQueued:
    """A call waits for a free slot (`Agent(max_concurrent_tools=...)`) before it starts.

    Calls leave the queue in the order they joined it; `ToolStarted` says when this one does.
    """

    step: int
    index: int
    id: str
    name: str
    type: Literal["tool_queued"] = field(default="tool_queued", init=False)


@dataclass(frozen=True, slots=True)
class ToolPaused:
    """An agent tool's inner run paused for approval: the call waits without a result.

    The run pauses (`stop_reason="approval_required"`) once the step's other calls end,
    with the inner calls in `result.approvals`; `Agent.resume` with decisions for those
    ids takes the inner run up where it stopped.
    """

    step: int
    index: int
    id: str
    name: str
    approvals: tuple[ApprovalRequest, ...]
    """The inner calls waiting for a decision, their ids prefixed with this call's id."""
    type: Literal["tool_paused"] = field(default="tool_paused", init=False)
