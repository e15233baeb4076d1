"""The step's side of agent tools: their usage rolled up, their paused calls held and
taken up again on resume with the decisions meant for their inner calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..state._approvals import Approval, ApprovalRequest

if TYPE_CHECKING:
    from ..state._state import PendingCall, RunState
    from ._execute import ToolRun
    from ._step_state import StepState

__all__ = ["after_tools", "inner_requests", "take_up"]


def after_tools(state: RunState, step: StepState, runnable: Sequence[ToolRun]) -> None:
    """Once the step's calls have ended: add the usage of the runs inside them to the
    run's, and hold each call whose inner run paused (it waits for decisions)."""
    calls = None
    for run in runnable:
        if run.usage is not None:
            state.usage += run.usage
        if run.pause is None and run.resume is None:
            continue  # not an agent tool that paused or was taken up: the usual case
        calls = calls or {call.id: call for call in step.calls}
        call = calls[run.id]
        if run.pause is not None:
            state.calls_run -= 1  # counted when it runs again, on resume, to its end
            call.status, call.output = "awaiting_approval", None
            call.subrun = run.pause.saved()
            step.held[run.id] = run
        else:
            call.subrun = None  # taken up and answered (or stopped): nothing left to resume


def take_up(
    step: StepState, call: PendingCall, decisions: Mapping[str, Approval], *, asking: bool
) -> bool:
    """Hand the decisions for a paused agent tool's inner calls to its next run.

    Their ids are the outer call's id, "/", and the inner id; with at least one of them
    decided, or an approver to ask (`asking`: the inner run asks it about the others),
    the call runs again (the inner run resumes; what stays undecided pauses it again),
    otherwise it keeps waiting.
    """
    assert call.subrun is not None
    prefix = call.id + "/"
    forwarded = {
        key[len(prefix) :]: decision for key, decision in decisions.items()
        if key.startswith(prefix)
    }  # fmt: skip
    if not forwarded and not asking:
        return False
    run = next(run for run in step.runnable if run.id == call.id)
    run.resume = (call.subrun["state"], forwarded)
    call.status = "ready"
    return True


def inner_requests(call: PendingCall) -> tuple[ApprovalRequest, ...]:
    """The inner calls a held agent tool call waits on, as `result.approvals` lists them."""
    assert call.subrun is not None
    return tuple(
        ApprovalRequest(
            data["id"],
            data["tool"],
            data["arguments"],
            data["step"],
            data["index"],
            data["raw_arguments"],
            tuple(data["path"]),
        )
        for data in call.subrun["requests"]
    )
