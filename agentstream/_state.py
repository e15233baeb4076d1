"""Where a run stands between two steps, and what one step has gathered so far."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._exceptions import RunError
from ._execute import ToolRun
from ._message import AssembledMessage, AssembledResponse
from ._result import StepInfo, StopReason
from ._step import call_ids
from ._usage import Usage

if TYPE_CHECKING:
    from ._early import EarlyStarts, ReuseKey

__all__ = ["RunState", "StepState"]


@dataclass(slots=True)
class RunState:
    """Everything the next step of a run reads and the step after it needs.

    The loop is a function of this value: each step reads it, streams a response,
    runs the tools and leaves it ready for the next step.
    """

    run_id: str
    messages: list[dict[str, Any]]
    """The conversation, consistent at every moment (each call answered)."""
    first_new: int
    """Where the messages this run added begin."""
    step: int = 0
    """The number of the last step begun."""
    usage: Usage = field(default_factory=Usage)
    steps: list[StepInfo] = field(default_factory=list)
    invalid_calls: int = 0
    """Invalid tool calls so far, against the agent's `max_invalid_calls`."""
    calls_run: int = 0
    """Tool calls run so far, against the agent's `max_tool_calls`."""
    retries_left: float = math.inf
    """What is left of the retry budget."""
    final_only: StopReason | None = None
    """Why the next request offers the model no tools (a limit was reached)."""
    used_ids: set[str] = field(default_factory=set)
    """Every tool call id in the conversation: a repeated one is replaced."""

    @classmethod
    def start(cls, run_id: str, messages: list[dict[str, Any]], budget: int | None) -> RunState:
        """The state of a run that has made no request yet."""
        return cls(
            run_id,
            messages,
            first_new=len(messages),
            retries_left=math.inf if budget is None else budget,
            used_ids=call_ids(messages),
        )


@dataclass(slots=True)
class StepState:
    """What one step has gathered: its attempts, its response, the fate of each call."""

    number: int
    failures: list[RunError] = field(default_factory=list)
    """The errors of its failed attempts, in order."""
    sent: float = 0.0
    first_token: float | None = None
    finished: float = 0.0
    response: AssembledResponse | None = None
    message: AssembledMessage | None = None
    """The whole response's message, its call ids made unique in the conversation."""
    not_run: StopReason | None = None
    """Why none of its calls may run, if so."""
    runnable: list[ToolRun] = field(default_factory=list)
    outputs: dict[int, str] = field(default_factory=dict)
    """What the model is told for each call, by call index."""
    assistant: dict[str, Any] = field(default_factory=dict)
    tool_time: float = 0.0
    early: EarlyStarts | None = None
    """The calls of the attempt under way that started early (with `early_tools`)."""
    reusable: dict[ReuseKey, ToolRun] = field(default_factory=dict)
    """Results of idempotent early calls from broken attempts, for a retry to reuse."""

    @property
    def attempt(self) -> int:
        """The number of the attempt under way (1 for the first request)."""
        return len(self.failures) + 1
