"""The typed events a run reports, one frozen dataclass per kind, joined in `Event`.

Every event has a literal `type` tag, so consumers can `match` on the class or on the
tag, and `event_to_dict` turns any of them into plain JSON-ready data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ._convert import clean_text, to_jsonable
from ._exceptions import RunError
from ._stream_events import ReasoningDelta as ReasoningDelta
from ._stream_events import RefusalDelta as RefusalDelta
from ._stream_events import ServerError as ServerError
from ._stream_events import StreamEvent as StreamEvent
from ._stream_events import TextDelta as TextDelta
from ._stream_events import ToolCallDelta as ToolCallDelta
from ._stream_events import ToolCallStarted as ToolCallStarted
from ._tool_events import ApprovalRequested as ApprovalRequested
from ._tool_events import ToolCallApproved as ToolCallApproved
from ._tool_events import ToolCallDenied as ToolCallDenied
from ._tool_events import ToolCallInvalid as ToolCallInvalid
from ._tool_events import ToolCallReady as ToolCallReady
from ._tool_events import ToolCancelled as ToolCancelled
from ._tool_events import ToolFinished as ToolFinished
from ._tool_events import ToolPaused as ToolPaused
from ._tool_events import ToolProgress as ToolProgress
from ._tool_events import ToolQueued as ToolQueued
from ._tool_events import ToolStarted as ToolStarted
from ._usage import Usage
from .state._guardrail import GuardrailStage, GuardrailTripped

if TYPE_CHECKING:
    from ._result import RunResult

__all__ = [
    "ApprovalRequested",
    "ContextCompacted",
    "Event",
    "FallbackUsed",
    "GuardrailChecked",
    "MaxStepsReached",
    "MessageDelivered",
    "MessageQueued",
    "OutputDelta",
    "OutputInvalid",
    "OutputReady",
    "ReasoningDelta",
    "RefusalDelta",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "ServerError",
    "StepFinished",
    "StepInterrupted",
    "StepPrepared",
    "StepStarted",
    "StreamEvent",
    "SubRunEvent",
    "TextDelta",
    "ToolCallApproved",
    "ToolCallDelta",
    "ToolCallDenied",
    "ToolCallInvalid",
    "ToolCallReady",
    "ToolCallStarted",
    "ToolCancelled",
    "ToolFinished",
    "ToolPaused",
    "ToolProgress",
    "ToolQueued",
    "ToolStarted",
    "UsageLimitReached",
    "event_to_dict",
]


@dataclass(frozen=True, slots=True)
class OutputDelta:
    """The typed answer so far, while it streams (runs with an `output_type` only)."""

    step: int
    partial: Any
    """Best-effort parse of the answer so far, as plain JSON data (a dict for a model,
    a list for `list[...]`, ...): whole fields, then the last one maybe cut. Refreshed
    like `ToolCallDelta.partial`; treat it as read-only."""
    completed: tuple[str | int, ...]
    """The top-level fields (names) or items (indexes) complete so far that passed
    validation, in order; it only grows, and any cutting of the same answer into pieces
    adds the same entries in the same order."""
    type: Literal["output_delta"] = field(default="output_delta", init=False)


@dataclass(frozen=True, slots=True)
class OutputReady:
    """A whole typed answer that fits the output type: `value` becomes `result.output`."""

    step: int
    value: Any
    raw: str
    """The JSON the model sent (the text, or the final-answer tool's arguments)."""
    type: Literal["output_ready"] = field(default="output_ready", init=False)


@dataclass(frozen=True, slots=True)
class OutputInvalid:
    """A whole typed answer that is not JSON or does not fit; `error` goes back to the model.

    It counts against the agent's `max_invalid_calls`, like an invalid tool call.
    """

    step: int
    raw: str
    error: str
    type: Literal["output_invalid"] = field(default="output_invalid", init=False)


@dataclass(frozen=True, slots=True)
class RunStarted:
    """A run began."""

    run_id: str
    model: str
    tools: tuple[str, ...]
    type: Literal["run_started"] = field(default="run_started", init=False)


@dataclass(frozen=True, slots=True)
class StepStarted:
    """A request to the model is about to stream; `attempt` counts from 1 within a step."""

    step: int
    attempt: int = 1
    type: Literal["step_started"] = field(default="step_started", init=False)


@dataclass(frozen=True, slots=True)
class StepInterrupted:
    """An attempt at a step failed; everything it streamed is withdrawn.

    A UI should clear what it showed for this step: the text and reasoning in
    `retracted_text` and `retracted_reasoning`, and the tool calls whose (choice 0)
    indexes are in `retracted_calls`, none of which will run. With `retry_in` set the
    step starts again (a new `StepStarted` with the next `attempt`) after that many
    seconds; with None the run fails with `error` or with `RetriesExhausted`.
    """

    step: int
    attempt: int
    error: RunError
    retracted_text: str
    retracted_reasoning: str
    retracted_calls: tuple[int, ...]
    retry_in: float | None
    type: Literal["step_interrupted"] = field(default="step_interrupted", init=False)


@dataclass(frozen=True, slots=True)
class StepFinished:
    """A response finished streaming and was assembled."""

    step: int
    finish_reason: str | None
    message: Mapping[str, Any]
    """The assistant message as added to the conversation."""
    usage: Usage | None
    time_to_first_token: float | None
    """Seconds from sending the request to the first content, reasoning or tool piece."""
    duration: float
    """Seconds from sending the request to the end of the stream."""
    tokens_per_second: float | None
    """Completion tokens per second after the first token, when usage was reported."""
    response_id: str | None = None
    """The id the server gave the response, if it sent one."""
    response_model: str | None = None
    """The model that answered, as the server named it (it may differ from the one asked)."""
    cost: float | None = None
    """The response's cost in USD, when the agent has prices for its model."""
    model: str | None = None
    """The model asked for this response, when the agent has fallback models."""
    type: Literal["step_finished"] = field(default="step_finished", init=False)


@dataclass(frozen=True, slots=True)
class MaxStepsReached:
    """The run used all its steps while the model still wanted tools."""

    step: int
    max_steps: int
    type: Literal["max_steps_reached"] = field(default="max_steps_reached", init=False)


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The run ended normally; `result` is what `Agent.run` returns."""

    result: RunResult[Any]
    type: Literal["run_finished"] = field(default="run_finished", init=False)


@dataclass(frozen=True, slots=True)
class RunFailed:
    """The run ended with an error, which the caller also receives as an exception."""

    error: BaseException
    type: Literal["run_failed"] = field(default="run_failed", init=False)


@dataclass(frozen=True, slots=True)
class SubRunEvent:
    """An event of an agent running as a tool (`Agent.as_tool`) inside this run.

    `step`, `index`, `id` and `name` are this run's call of the agent tool; `event` is
    the inner run's event as it happened. Nested deeper, the event is not wrapped twice:
    `path` and `call_ids` name every agent tool call from this run down to the run that
    reported `event` (`path[0] == name`).
    """

    step: int
    index: int
    id: str
    name: str
    path: tuple[str, ...]
    """The agent tools' names, from this run's call down to the one whose run reported it."""
    call_ids: tuple[str, ...]
    """The ids of those calls, in the same order."""
    event: Event
    """The inner run's event (never itself a `SubRunEvent`)."""
    type: Literal["sub_run_event"] = field(default="sub_run_event", init=False)


@dataclass(frozen=True, slots=True)
class ContextCompacted:
    """The next request of `step` is built from a more compacted view of the conversation
    (`Agent(context=...)`); the run's own conversation keeps every message."""

    step: int
    dropped: int
    """Tool results newly dropped (a note stands in their place)."""
    shortened: int
    """Tool results newly cut to their first characters (with a note)."""
    summarised: int
    """Messages newly replaced by the model's summary (0: no summary request)."""
    tokens_before: int
    """The estimated input tokens of the request before this compaction."""
    tokens_after: int
    usage: Usage | None = None
    """What the summary request cost (counted in the run's usage), if one was made."""
    type: Literal["context_compacted"] = field(default="context_compacted", init=False)


@dataclass(frozen=True, slots=True)
class MessageQueued:
    """A user message was sent to the run (`AgentRun.send`); it waits for a step boundary.

    Reported at the run's next pause between events it makes (a tool's event, the end of
    a response, a step's start), not in the middle of a streaming response.
    """

    id: str
    text: str
    step: int
    """The step under way when it was sent (0 before the first)."""
    type: Literal["message_queued"] = field(default="message_queued", init=False)


@dataclass(frozen=True, slots=True)
class MessageDelivered:
    """A queued user message joined the conversation, before the request of `step`."""

    step: int
    """The step whose request is the first to carry it."""
    id: str
    text: str
    position: int
    """Its index in the run's messages."""
    type: Literal["message_delivered"] = field(default="message_delivered", init=False)


@dataclass(frozen=True, slots=True)
class StepPrepared:
    """The agent's `prepare_step` changed this step's request (None: the agent's setting)."""

    step: int
    model: str | None
    tools: tuple[str, ...] | None
    """The names of the tools offered in this step."""
    tool_choice: str | None
    instructions: str | None
    """Added after the agent's instructions, for this step's request only."""
    type: Literal["step_prepared"] = field(default="step_prepared", init=False)


@dataclass(frozen=True, slots=True)
class GuardrailChecked:
    """A guardrail gave its verdict: `tripped` is None when it let the run go on."""

    step: int
    """The step it watched: 1 for input guardrails, the answer's step for output ones."""
    stage: GuardrailStage
    name: str
    tripped: GuardrailTripped | None
    type: Literal["guardrail_checked"] = field(default="guardrail_checked", init=False)


@dataclass(frozen=True, slots=True)
class UsageLimitReached:
    """A usage limit stops the run: before a request that would pass it (then not sent),
    or after a response that passed it (its tool calls then do not run)."""

    step: int
    """The step whose response passed the limit, or the last step before the request."""
    limit: str
    """Which limit: a field of `UsageLimits` (`input_tokens`, `cost`, ...)."""
    value: float
    """What the run would use (estimated, before a request) or has used."""
    maximum: float
    """The limit."""
    type: Literal["usage_limit_reached"] = field(default="usage_limit_reached", init=False)


@dataclass(frozen=True, slots=True)
class FallbackUsed:
    """A model gave up on a step before showing anything of it; the next model answers it."""

    step: int
    failed_model: str
    """The model that failed the step (after its retries)."""
    model: str
    """The model that answers the step now."""
    error: BaseException
    """Why the failed model gave up."""
    type: Literal["fallback_used"] = field(default="fallback_used", init=False)


Event = (
    RunStarted
    | StepStarted
    | StepInterrupted
    | TextDelta
    | ReasoningDelta
    | RefusalDelta
    | ToolCallStarted
    | ToolCallDelta
    | ServerError
    | OutputDelta
    | OutputReady
    | OutputInvalid
    | ToolCallReady
    | ToolCallInvalid
    | ApprovalRequested
    | ToolCallApproved
    | ToolCallDenied
    | ToolStarted
    | ToolProgress
    | ToolFinished
    | ToolCancelled
    | StepFinished
    | MaxStepsReached
    | RunFinished
    | RunFailed
    | ToolQueued
    | SubRunEvent
    | ToolPaused
    | ContextCompacted
    | MessageQueued
    | MessageDelivered
    | StepPrepared
    | GuardrailChecked
    | UsageLimitReached
    | FallbackUsed
)
"""Every event a run can report."""


_SCALARS = frozenset({float, bool, type(None)})  # ints: a huge one is described


def event_to_dict(event: Event, *, tracebacks: bool = False) -> dict[str, Any]:
    """Plain JSON-ready data for an event, with its `type` first; never raises.

    Values are converted as for a tool's result (cycles and nesting past 100 levels
    become markers, lone surrogates U+FFFD), so the data can always be written out.
    An exception becomes its type and message only; `tracebacks=True` adds its
    formatted traceback, for debugging.
    """
    data: dict[str, Any] = {"type": event.type}
    for f in dataclasses.fields(event):
        if f.name != "type":
            value = getattr(event, f.name)
            if type(value) is str:
                data[f.name] = clean_text(value)
            elif f.name == "event" and type(event) is SubRunEvent:
                data[f.name] = event_to_dict(value, tracebacks=tracebacks)
            elif type(value) in _SCALARS:
                data[f.name] = value
            else:
                data[f.name] = to_jsonable(value, tracebacks=tracebacks)
    return data
