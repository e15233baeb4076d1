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
from ._usage import Usage

if TYPE_CHECKING:
    from ._result import RunResult

__all__ = [
    "ApprovalRequested",
    "Event",
    "FallbackUsed",
    "MaxStepsReached",
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
    "StepStarted",
    "StreamEvent",
    "TextDelta",
    "ToolCallApproved",
    "ToolCallDelta",
    "ToolCallDenied",
    "ToolCallInvalid",
    "ToolCallReady",
    "ToolCallStarted",
    "ToolCancelled",
    "ToolFinished",
    "ToolProgress",
    "ToolStarted",
    "UsageLimitReached",
    "event_to_dict",
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
    """A call started early was withdrawn: no result of it reaches the model.

    The step's attempt ended broken (a cut stream, an error, a stall, `length`,
    `content_filter`) or the call turned out different from the one started. With
    `finished` the tool had already ended and its result is dropped; otherwise it was
    stopped while running.
    """

    step: int
    index: int
    id: str
    name: str
    reason: str
    finished: bool
    type: Literal["tool_cancelled"] = field(default="tool_cancelled", init=False)


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
    | UsageLimitReached
    | FallbackUsed
)
"""Every event a run can report."""


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
            elif type(value) in _SCALARS:
                data[f.name] = value
            else:
                data[f.name] = to_jsonable(value, tracebacks=tracebacks)
    return data
