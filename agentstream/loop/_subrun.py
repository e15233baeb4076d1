"""`Agent.as_tool`: a tool whose call runs an agent, its run nested in the caller's.

The inner run lives in the tool's own task, so it belongs to the outer run's task
group: leaving or cancelling the outer run (or the call alone) leaves the inner run's
block, which cancels its tools. Its events reach the outer stream as `SubRunEvent`s,
its steps' usage joins the outer run's, and a pause for approval inside it holds the
call (`SubRunPause`) with the inner state saved in the outer state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._exceptions import ToolError
from .._usage import Usage
from ..state._approvals import ApprovalRequest, Approver
from ..state._state import RunState
from ..tools._context import ToolContext, nested_hooks
from ..tools._tool import Tool
from ._nest import SubRunPause, step_usage, unreported
from ._run import AgentRun

__all__ = ["agent_tool"]

Start = Callable[..., AgentRun[Any]]
"""`Agent.stream` or `Agent.resume_stream` of the agent inside."""

_INPUT = "input"


def agent_tool(
    start: Start,
    resume: Start,
    own_approver: Callable[[], Approver | None],
    *,
    name: str,
    description: str,
    input_description: str,
) -> Tool:
    """A tool that runs an agent on `{"input": text}` and answers with its final output."""
    parameters = {
        "type": "object",
        "properties": {_INPUT: {"type": "string", "description": input_description}},
        "required": [_INPUT],
        "additionalProperties": False,
    }

    async def run_agent(arguments: dict[str, Any], context: ToolContext) -> Any:
        relay, taken, outer = nested_hooks(context)
        # The inner agent's own approver decides its calls; else the calling run's,
        # told which call it is; with neither, the inner run pauses, and the outer too.
        approver = None if own_approver() is not None else _asking(outer, context)
        if taken is None:
            run = start(arguments[_INPUT], deps=context.deps, approver=approver)
        else:
            state, decisions = taken
            run = resume(
                RunState.from_dict(state), approvals=decisions, deps=context.deps,
                approver=approver,
            )  # fmt: skip
        reported, ended = Usage(), False
        try:
            async with run:
                async for event in run:
                    if (usage := step_usage(event)) is not None:
                        reported += usage
                    if relay is not None:
                        relay(event)
            ended = True
        finally:
            if not ended and relay is not None:  # cancelled or failed: used, unreported
                relay(unreported(run.state.usage, reported))
        result = run.result
        if result.stop_reason == "approval_required" and result.state is not None:
            waiting = tuple(_qualified(request, context) for request in result.approvals)
            raise SubRunPause(waiting, result.state.to_dict())
        if result.output is None or result.output == "":
            raise ToolError(f"the agent ended without an answer ({result.stop_reason})")
        return result.output

    return Tool.from_schema(name, parameters, run_agent, description=description)


def _asking(outer: Approver | None, context: ToolContext) -> Approver | None:
    """The calling run's approver, asked about an inner call as the outer run names it."""
    if outer is None:
        return None
    ask = outer

    def inner(request: ApprovalRequest) -> Any:
        return ask(_qualified(request, context))

    return inner


def _qualified(request: ApprovalRequest, context: ToolContext) -> ApprovalRequest:
    """An inner call's request as the outer run shows it: its id and path made longer."""
    return ApprovalRequest(
        f"{context.tool_call_id}/{request.id}", request.tool, request.arguments,
        request.step, request.index, request.raw_arguments,
        (context.tool_name, *request.path),
    )  # fmt: skip
