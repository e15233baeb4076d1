"""What a finished run returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal

from typing_extensions import TypeVar

from ._usage import Usage

if TYPE_CHECKING:
    from ._approval import ApprovalRequest
    from ._state import RunState

__all__ = ["OutputT", "RunResult", "StepInfo", "StopReason"]

OutputT = TypeVar("OutputT", default=str)
"""The type of a run's output: `str` (the text) unless the agent has an `output_type`."""

StopReason = Literal[
    "answer",
    "max_steps",
    "max_tool_calls",
    "length",
    "content_filter",
    "refusal",
    "approval_required",
]
"""Why a run ended normally.

- `answer`: the model answered without asking for tools;
- `max_steps`: the step limit was reached (with `final_answer`, after one last step
  without tools);
- `max_tool_calls`: the run's limit of tool calls was reached (likewise);
- `length`: the response hit the token limit (its cut tool calls were not run);
- `content_filter`: the server withheld the response;
- `refusal`: the model refused;
- `approval_required`: the run paused: calls wait for a person's approval (see
  `RunResult.approvals`); `Agent.resume` continues it.
"""


@dataclass(frozen=True, slots=True)
class StepInfo:
    """Timings and usage of one step."""

    step: int
    finish_reason: str | None
    usage: Usage | None
    time_to_first_token: float | None
    duration: float
    tokens_per_second: float | None
    tool_calls: int
    tool_time: float
    """Wall time spent running this step's tools, in seconds."""
    attempts: int = 1
    """Requests made for this step: 1, plus one per retry after a failed attempt."""


@dataclass(frozen=True, slots=True)
class RunResult(Generic[OutputT]):
    """The outcome of a run; `RunResult[Booking]` for a run whose output type is `Booking`."""

    run_id: str
    output: OutputT
    """The final assistant text ("" if the model ended without text); with an output
    type, the validated value. A typed run that ended without a valid answer (a
    refusal, a limit: see `stop_reason`, which is then not "answer") has None here."""
    messages: tuple[Mapping[str, Any], ...]
    """The whole conversation as OpenAI message dicts, ready to save or to continue."""
    new_messages: tuple[Mapping[str, Any], ...]
    """The messages this run added (assistant and tool messages)."""
    stop_reason: StopReason
    usage: Usage
    """Usage summed over all steps that reported it."""
    steps: tuple[StepInfo, ...]
    duration: float
    refusal: str | None = None
    state: RunState | None = None
    """Where the run ended: save `state.to_json()` to resume a paused run elsewhere."""
    approvals: tuple[ApprovalRequest, ...] = ()
    """The calls waiting for a decision when `stop_reason` is `approval_required`."""

    def to_messages(self) -> list[dict[str, Any]]:
        """A mutable copy of the conversation, for continuing it in another run."""
        return [dict(message) for message in self.messages]
