"""Approvals: which calls wait for a person, how a decision is asked for and recorded."""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from ._events import Event, ToolCallApproved, ToolCallDenied
from ._exceptions import SetupError
from ._tools import Tool, ToolContext

if TYPE_CHECKING:
    from ._state import StepState

__all__ = [
    "Approval",
    "ApprovalRequest",
    "Approvals",
    "Approver",
    "ask",
    "check_approvals",
    "decide",
    "denial_output",
    "needs_approval",
]


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A call waiting for a person's decision."""

    id: str
    """The call's id: the key of its decision in `Agent.resume(..., approvals=...)`."""
    tool: str
    arguments: dict[str, Any]
    """The validated arguments, as the tool would receive them."""
    step: int
    index: int
    raw_arguments: str
    """The arguments as the model sent them (JSON text)."""


@dataclass(frozen=True, slots=True)
class Approval:
    """A decision on a call: approved or not, with an optional reason for the model."""

    approved: bool
    reason: str | None = None

    @classmethod
    def approve(cls, reason: str | None = None) -> Approval:
        return cls(True, reason)

    @classmethod
    def deny(cls, reason: str | None = None) -> Approval:
        return cls(False, reason)


Decision: TypeAlias = "bool | Approval"
Approvals: TypeAlias = "Mapping[str, bool | Approval]"
"""Decisions by call id, as `Agent.resume` takes them."""
Approver: TypeAlias = Callable[[ApprovalRequest], "bool | Approval | Awaitable[bool | Approval]"]
"""Asked for each call that needs approval; sync or async; returns a decision."""


async def needs_approval(tool: Tool, arguments: dict[str, Any], context: ToolContext) -> bool:
    """Whether this call of `tool` waits for a person's approval.

    A rule that raises asks for approval: when in doubt, a person decides.
    """
    rule = tool.needs_approval
    if isinstance(rule, bool):
        return rule
    try:
        verdict = rule(arguments, context)
        if inspect.isawaitable(verdict):
            verdict = await verdict
    except Exception:
        return True
    return bool(verdict)


async def ask(approver: Approver, request: ApprovalRequest) -> Approval:
    """The approver's decision; an approver that fails or answers nonsense denies."""
    try:
        answer = approver(request)
        if inspect.isawaitable(answer):
            answer = await answer
    except Exception as exc:
        return Approval(False, f"the approver failed: {type(exc).__name__}")
    return _decision(answer)


def _decision(answer: object) -> Approval:
    if isinstance(answer, Approval):
        return answer
    if isinstance(answer, bool):
        return Approval(answer)
    return Approval(False, "the approver gave no decision")


def check_approvals(approvals: Mapping[str, Any] | None) -> dict[str, Approval]:
    """Decisions by call id, each made an `Approval`; a mistake is a `SetupError`."""
    if approvals is None:
        return {}
    if not isinstance(approvals, Mapping):
        raise SetupError("approvals must map call ids to True, False or an Approval")
    decided: dict[str, Approval] = {}
    for call_id, answer in approvals.items():
        if not isinstance(call_id, str) or not isinstance(answer, (bool, Approval)):
            raise SetupError(
                f"approvals must map call ids to True, False or an Approval, not "
                f"{call_id!r:.40}: {answer!r:.40}"
            )
        decided[call_id] = _decision(answer)
    return decided


def denial_output(reason: str | None) -> str:
    """What the model is told for a call that was not approved."""
    text = "denied: the user did not approve this call"
    return f"{text}: {reason}" if reason else text


async def decide(
    step: StepState, decisions: Mapping[str, Approval], approver: Approver | None
) -> AsyncGenerator[Event, None]:
    """Settle the step's calls awaiting approval: the decisions given, then the approver.

    What stays undecided keeps the run paused once the other calls have run; approved
    calls join the step's runnable calls, the others are held.
    """
    for call in step.calls:
        if call.status != "awaiting_approval":
            continue
        decision = decisions.get(call.id)
        if decision is None and approver is not None:
            ready = next(run for run in step.runnable if run.id == call.id)
            request = ApprovalRequest(
                call.id, call.name, ready.arguments, step.number, call.index, call.arguments
            )
            decision = await ask(approver, request)
        if decision is None:
            continue
        if decision.approved:
            call.status = "ready"
            yield ToolCallApproved(step.number, call.index, call.id, call.name)
        else:
            call.status, call.output = "denied", denial_output(decision.reason)
            yield ToolCallDenied(
                step.number, call.index, call.id, call.name, decision.reason, call.output
            )
    status = {call.id: call.status for call in step.calls}
    step.held = {run.id: run for run in step.runnable if status[run.id] == "awaiting_approval"}
    step.runnable = [run for run in step.runnable if status[run.id] == "ready"]
