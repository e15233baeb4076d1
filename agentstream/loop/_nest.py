"""An agent run inside a tool call (`Agent.as_tool`): its events wrapped, its pause carried.

The tool runner imports this module: it holds only what a call needs while it runs;
what the step makes of a paused call afterwards is in `_held`.
"""

from __future__ import annotations

from typing import Any

from .._events import Event, StepFinished, SubRunEvent
from .._exceptions import AgentStreamError
from .._usage import Usage
from ..state._approvals import ApprovalRequest

__all__ = ["SubRunPause", "nest", "request_data", "step_usage", "unreported"]


class SubRunPause(AgentStreamError):
    """Raised by an agent tool whose inner run paused for approval.

    Not a failure: the runner holds the call without a result (`ToolPaused`), and the
    step saves the inner run's state to take it up on resume. (Called outside a run,
    the tool lets it reach its caller, so it is one of the package's own errors.)
    """

    def __init__(self, requests: tuple[ApprovalRequest, ...], state: dict[str, Any]) -> None:
        super().__init__(f"the inner run waits for {len(requests)} decision(s)")
        self.requests = requests
        """The inner calls waiting, their ids already prefixed with the outer call's id."""
        self.state = state
        """The inner run's saved state (`RunState.to_dict()`)."""

    def saved(self) -> dict[str, Any]:
        """What the outer state keeps in `PendingCall.subrun`."""
        return {"state": self.state, "requests": [request_data(r) for r in self.requests]}


def nest(step: int, index: int, call_id: str, name: str, event: Event) -> SubRunEvent:
    """`event` of the run inside call `call_id`, as the outer run reports it.

    An event already wrapped by a run deeper down is wrapped once, its path made longer,
    so a consumer never unwraps more than one level.
    """
    if type(event) is SubRunEvent:
        path, ids, event = (name, *event.path), (call_id, *event.call_ids), event.event
    else:
        path, ids = (name,), (call_id,)
    return SubRunEvent(step, index, call_id, name, path, ids, event)


def step_usage(event: Event) -> Usage | None:
    """The usage a step of a run (or of any run inside it) reported with `event`."""
    inner = event.event if type(event) is SubRunEvent else event
    return inner.usage if type(inner) is StepFinished else None


def unreported(used: Usage, reported: Usage) -> Usage:
    """What a cancelled inner run used and no `StepFinished` reported (its step under
    way); never below zero (a run nested deeper may have reported more than it added)."""
    names = ("prompt_tokens", "completion_tokens", "total_tokens", "reasoning_tokens",
             "cached_tokens")  # fmt: skip
    return Usage(*(max(getattr(used, n) - getattr(reported, n), 0) for n in names))


def request_data(request: ApprovalRequest) -> dict[str, Any]:
    """An `ApprovalRequest` as plain JSON data (for the saved state)."""
    return {
        "id": request.id,
        "tool": request.tool,
        "arguments": request.arguments,
        "step": request.step,
        "index": request.index,
        "raw_arguments": request.raw_arguments,
        "path": list(request.path),
    }
