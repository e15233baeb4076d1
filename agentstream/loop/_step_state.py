"""The step under way: its attempts, its whole response and the fate of each call."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._exceptions import RunError
from .._usage import Usage
from ..state._state import PendingCall, StepInfo, StopReason
from ..wire._message import AssembledMessage, AssembledResponse
from ..wire.responses._output import AssembledResponsesOutput
from ._execute import ToolRun
from ._step_shape import StepOverrides

if TYPE_CHECKING:
    from ._early import EarlyStarts, ReuseKey

__all__ = ["StepState", "timings"]


@dataclass(slots=True)
class StepState:
    """What one step has gathered: its attempts, its response, the fate of each call."""

    number: int
    failures: list[RunError] = field(default_factory=list)
    """The errors of its failed attempts, in order."""
    attempt: int = 1
    """The number of the attempt under way (1 for the first request): one more than
    `failures` holds (see `attempt_failed`)."""
    sent: float = 0.0
    first_token: float | None = None
    finished: float = 0.0
    response: AssembledResponse | AssembledResponsesOutput | None = None
    message: AssembledMessage | None = None
    """The whole response's message, its call ids made unique in the conversation."""
    finish_reason: str | None = None
    usage: Usage | None = None
    response_id: str | None = None
    response_model: str | None = None
    not_run: StopReason | None = None
    """Why none of its calls may run, if so."""
    calls: list[PendingCall] = field(default_factory=list)
    """Every call of the response, in call order, with its fate."""
    runnable: list[ToolRun] = field(default_factory=list)
    """The calls to run now, in call order."""
    held: dict[str, ToolRun] = field(default_factory=dict)
    """Valid calls still waiting for a decision, by id."""
    assistant: dict[str, Any] = field(default_factory=dict)
    tool_time: float = 0.0
    stop: StopReason | None = None
    """Why the run ends after this step, once that is known (None: it goes on)."""
    resumed: StepInfo | None = None
    """The saved step's figures, when it was taken up from a saved state."""
    early: EarlyStarts | None = None
    """The calls of the attempt under way that started early (with `early_tools`)."""
    reusable: dict[ReuseKey, ToolRun] = field(default_factory=dict)
    """Results of idempotent early calls from broken attempts, for a retry to reuse."""
    overrides: StepOverrides | None = None
    """This step's own request settings, from the agent's `prepare_step`."""
    model: str | None = None
    """The model asked for the attempt under way, when the agent has fallback models."""
    cost: float | None = None
    """The response's cost in USD, when the run has prices."""

    def info(self) -> StepInfo:
        """The step's figures so far."""
        if self.resumed is not None:
            return dataclasses.replace(self.resumed, tool_time=self.tool_time)
        ttft, duration, rate = timings(self.sent, self.first_token, self.finished, self.usage)
        return StepInfo(
            self.number, self.finish_reason, self.usage, ttft, duration, rate,
            len(self.calls), self.tool_time, self.attempt, self.model, self.cost,
        )  # fmt: skip


def timings(
    sent: float, first_token: float | None, finished: float, usage: Usage | None
) -> tuple[float | None, float, float | None]:
    """Time to first token, duration and tokens per second of one step."""
    ttft = first_token - sent if first_token is not None else None
    rate = None
    if usage is not None and usage.completion_tokens and first_token is not None:
        generating = finished - first_token
        if generating > 0:
            rate = usage.completion_tokens / generating
    return ttft, finished - sent, rate
