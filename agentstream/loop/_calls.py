"""Deciding what becomes of each call of a whole response: run it, or refuse it and why."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._events import ApprovalRequested, Event, ToolCallInvalid, ToolCallReady
from .._exceptions import ErrorBudgetExceeded
from ..state._approvals import ApprovalRequest
from ..state._state import PendingCall, PendingStep, RunState, StopReason
from ..tools._context import ToolContext
from ..wire._message import AssembledMessage, AssembledToolCall
from ._approval import needs_approval
from ._held import inner_requests
from ._step_state import StepState
from ._validate import NOT_RUN, over_limit, validate_call

if TYPE_CHECKING:
    from ._config import RunConfig
    from ._typed import TypedRun

__all__ = [
    "UNKNOWN_OUTCOME",
    "answer_reason",
    "assistant_message",
    "awaiting",
    "resumed_step",
    "sort_calls",
    "stop_after",
]

UNKNOWN_OUTCOME = (
    "outcome unknown: the run stopped while this call was running, and it was not run "
    "again because its tool is not idempotent"
)


def assistant_message(assembled: AssembledMessage) -> dict[str, Any]:
    """The assistant message to send back, as an OpenAI message dict."""
    message = assembled.to_dict()
    for call in message.get("tool_calls", ()):
        if call["function"]["name"] is None:
            call["function"]["name"] = ""  # servers reject a null name in requests
    return message


def answer_reason(message: AssembledMessage, finish_reason: str | None) -> StopReason:
    """Why a run ends on a response that asked for no tools."""
    if message.refusal:
        return "refusal"
    if finish_reason in ("length", "content_filter"):
        return finish_reason  # type: ignore[return-value]
    return "answer"


def resumed_step(pending: PendingStep, config: RunConfig) -> StepState:
    """The saved step in progress, ready to go on where it stopped.

    Finished and denied calls keep their output; a call that was running when the
    run stopped runs again only if its tool is idempotent (otherwise the model is
    told its outcome is unknown); ready and waiting calls are validated again.
    """
    step = StepState(
        pending.step,
        calls=pending.calls,
        assistant=pending.assistant,
        finish_reason=pending.finish_reason,
        response_id=pending.response_id,
        response_model=pending.response_model,
        resumed=pending.info,
    )
    for call in pending.calls:
        if call.status in ("finished", "denied"):
            continue
        tool = config.tools.get(call.name)
        if call.status == "running":
            if tool is None or not tool.idempotent:
                call.status, call.output = "finished", UNKNOWN_OUTCOME
                continue
            call.status = "ready"
        assembled = AssembledToolCall(call.index, call.id, call.name, call.arguments)
        ready, error = validate_call(config, assembled)
        if ready is None:
            call.status, call.output = "finished", f"Invalid tool call: {error}"
        else:
            step.runnable.append(ready)
    return step


def awaiting(step: StepState, config: RunConfig) -> tuple[ApprovalRequest, ...]:
    """The step's calls still waiting for a decision."""
    return tuple(
        ApprovalRequest(
            call.id,
            call.name,
            step.held[call.id].arguments,
            step.number,
            call.index,
            call.arguments,
        )
        for call in step.calls
        if call.status == "awaiting_approval" and call.id in step.held and call.subrun is None
    ) + tuple(
        request
        for call in step.calls
        if call.status == "awaiting_approval" and call.subrun is not None
        for request in inner_requests(call)
    )


async def sort_calls(
    config: RunConfig,
    state: RunState,
    step: StepState,
    answered: Mapping[int, str],
    run_id: str,
    deps: Any = None,
) -> list[Event]:
    """Validate each call of a whole response and check the limits: ready to run,
    awaiting approval, or refused and why (told to the model). Calls already answered
    (a typed final answer, or beside one) keep their answer. The events, in call order.

    A coroutine rather than a generator: the calls are sorted at once (only a rule of
    `needs_approval` may wait), and a generator relayed costs more than the sorting.
    """
    assert step.message is not None
    events: list[Event] = []
    context = (*state.messages, step.assistant)
    for call in step.message.tool_calls:
        pending = PendingCall(call.id, call.index, call.name or "", call.arguments, "ready")
        step.calls.append(pending)
        if call.index in answered:  # a final answer, or beside one (see `judge_calls`)
            pending.status, pending.output = "finished", answered[call.index]
            continue
        if step.not_run is not None:
            error = NOT_RUN[step.not_run]
        else:
            ready, error = validate_call(config, call)
            if ready is None:
                state.invalid_calls += 1
            else:
                error = over_limit(config, len(step.runnable), state.calls_run)
                if not error and step.early is not None:
                    ready, withdrawn = step.early.claim(call, ready)
                    events.extend(withdrawn)
                    if ready.early:  # never needs approval; its ToolCallReady was sent
                        step.runnable.append(ready)
                        continue
                if not error:
                    step.runnable.append(ready)
                    rule = ready.tool.needs_approval
                    if not isinstance(rule, bool):  # a rule: asked with the call's context
                        asked: ToolContext = ToolContext(
                            run_id, ready.id, ready.tool.name, step.number, context, deps=deps
                        )
                        rule = await needs_approval(ready.tool, ready.arguments, asked)
                    if rule:
                        pending.status = "awaiting_approval"
                        events.append(
                            ApprovalRequested(
                                step.number, call.index, call.id, ready.tool.name, ready.arguments
                            )
                        )
                    else:
                        events.append(ToolCallReady(
                            step.number, call.index, call.id, ready.tool.name,
                            ready.arguments, call.arguments,
                        ))  # fmt: skip
                    continue
                if error == NOT_RUN["max_tool_calls"] and state.final_only is None:
                    state.final_only = "max_tool_calls"
        pending.status, pending.output = "finished", f"Invalid tool call: {error}"
        events.append(
            ToolCallInvalid(step.number, call.index, call.id, call.name, call.arguments, error)
        )
    if step.early is not None:
        reason = NOT_RUN[step.not_run] if step.not_run else "the whole response did not keep it"
        events.extend(step.early.unclaimed(reason))
    if step.calls:
        state.pending = PendingStep(
            step.number, step.assistant, step.calls, step.finish_reason, step.info(),
            step.response_id, step.response_model,
        )  # fmt: skip
    return events


def stop_after(
    config: RunConfig, state: RunState, step: StepState, typed: TypedRun | None
) -> tuple[StopReason | None, bool]:
    """Why the run ends after `step` (`None`: it goes on); whether it hit the step limit.

    Raises `ErrorBudgetExceeded` once the model has made too many invalid calls.
    """
    if state.invalid_calls > config.max_invalid_calls:
        raise ErrorBudgetExceeded(
            f"the model made {state.invalid_calls} invalid tool calls in this run "
            f"(the budget is {config.max_invalid_calls})"
        )
    if step.not_run is not None:
        return step.not_run, False
    if typed is not None and typed.ready_step == step.number:
        return "answer", False
    if not step.calls and not (typed is not None and typed.goes_on(step)):
        assert step.message is not None
        return answer_reason(step.message, step.finish_reason), False
    if state.final_only == "max_tool_calls" and not config.final_answer:
        return "max_tool_calls", False
    if step.number >= config.max_steps:
        return (None if config.final_answer else "max_steps"), True
    return None, False
