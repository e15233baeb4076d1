"""Approvals: which calls wait for a person, how a decision is asked for and recorded."""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any

from .._events import Event, ToolCallApproved, ToolCallDenied
from .._exceptions import SetupError, StateError
from ..state._approvals import Approval, ApprovalRequest, Approver
from ..tools._tool import Tool, ToolContext
from ._held import take_up

if TYPE_CHECKING:
    from ..state._state import PendingCall
    from ._step_state import StepState

__all__ = [
    "ask",
    "check_approvals",
    "check_decisions",
    "decide",
    "denial_output",
    "needs_approval",
]


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
        if call.subrun is not None:  # an agent tool: the decisions are its inner run's
            take_up(step, call, decisions, asking=approver is not None)
            continue
        decision, by = decisions.get(call.id), "resume"
        if decision is None and approver is not None:
            ready = next(run for run in step.runnable if run.id == call.id)
            request = ApprovalRequest(
                call.id, call.name, ready.arguments, step.number, call.index, call.arguments
            )
            decision, by = await ask(approver, request), "approver"
        if decision is None:
            continue
        call.decision = {
            "approved": decision.approved,
            "by": decision.by or by,
            "at": time.time(),
            "digest": call_digest(call),
        }
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


def call_digest(call: PendingCall) -> str:
    """What a decision is bound to: the call's id, tool and arguments as sent."""
    bound = json.dumps([call.id, call.name, call.arguments], ensure_ascii=False)
    return hashlib.sha256(bound.encode()).hexdigest()


async def check_decisions(step: StepState, run_id: str, context: tuple[Any, ...]) -> None:
    """Refuse (`StateError`) a saved step whose call would run without its decision.

    A call ready to run whose tool needs approval must carry an approval recorded for
    that very call (id, tool, arguments); a state edited to say `ready` carries none.
    """
    calls = {call.id: call for call in step.calls}
    for run in step.runnable:
        call = calls[run.id]
        decision = call.decision
        if decision is not None and decision["digest"] != call_digest(call):
            raise StateError(
                f"the decision on call {call.id!r:.80} was made for other arguments or "
                f"another tool than the saved call has"
            )
        if call.status == "awaiting_approval":
            continue
        asked = ToolContext(run_id, run.id, run.tool.name, step.number, context)
        if not await needs_approval(run.tool, run.arguments, asked):
            continue
        if decision is None or not decision["approved"]:
            raise StateError(
                f"the saved call {call.id!r:.80} of {call.name!r:.80} is {call.status} but "
                f"its tool needs approval and no approval is recorded for it"
            )
