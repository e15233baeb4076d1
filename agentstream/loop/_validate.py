"""Whether a call may run: its tool, its arguments, and the run's limits on calls."""

from __future__ import annotations

from .._exceptions import ToolArgumentsError
from ..state._state import StopReason
from ..wire._message import AssembledToolCall
from ._config import RunConfig
from ._execute import ToolRun

__all__ = ["NOT_RUN", "over_limit", "validate_call"]

NOT_RUN: dict[StopReason, str] = {
    "length": "not run: the response hit the token limit before this call was complete",
    "content_filter": "not run: the server's content filter withheld the response",
    "max_steps": "not run: the run reached its step limit",
    "max_tool_calls": "not run: the run reached its limit of tool calls",
    "usage_limit": "not run: the run reached a usage limit",
}


def validate_call(config: RunConfig, call: AssembledToolCall) -> tuple[ToolRun | None, str]:
    """The call ready to run, or `None` and what is wrong with it (for the model)."""
    tools = config.catalog.tools
    if call.oversized is not None:
        return None, (
            f"the arguments were {call.oversized} characters long; at most "
            f"{config.max_argument_size} are accepted"
        )
    if not call.name:
        return None, "the call has no function name"
    tool = tools.get(call.name)
    if tool is None:
        available = ", ".join(tools) or "none"
        return None, f"unknown tool {call.name!r}; the available tools are: {available}"
    try:
        arguments = tool.validate(call.arguments)
    except ToolArgumentsError as exc:
        return None, f"{call.name}: {exc.message}"
    return ToolRun(call.index, call.id, tool, arguments), ""


def over_limit(config: RunConfig, in_step: int, in_run: int) -> str:
    """Why one more call cannot run after `in_step` in this step, `in_run` before it."""
    per_step = config.max_tool_calls_per_step
    if per_step is not None and in_step >= per_step:
        return f"not run: at most {per_step} tool calls run in one step"
    if config.max_tool_calls is not None and in_run + in_step >= config.max_tool_calls:
        return NOT_RUN["max_tool_calls"]
    return ""
