"""What a finished run returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic

from typing_extensions import TypeVar

from ._usage import Usage
from .state._state import StepInfo, StopReason

if TYPE_CHECKING:
    from .state._approvals import ApprovalRequest
    from .state._guardrail import GuardrailTripped
    from .state._state import RunState

__all__ = ["OutputT", "RunResult"]

OutputT = TypeVar("OutputT", default=str)
"""The type of a run's output: `str` (the text) unless the agent has an `output_type`."""


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
    guardrail: GuardrailTripped | None = None
    """The verdict that stopped the run when `stop_reason` is `guardrail` (its name,
    stage and message)."""
    cost: float | None = None
    """What the run's responses cost in USD, when the agent has prices (None otherwise)."""
    usage_limit: str | None = None
    """The usage limit that stopped the run (`stop_reason` is then `usage_limit`)."""

    def to_messages(self) -> list[dict[str, Any]]:
        """A mutable copy of the conversation, for continuing it in another run."""
        return [dict(message) for message in self.messages]
