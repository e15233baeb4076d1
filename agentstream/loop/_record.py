"""Writing a step into the run's state: its whole response, its messages, its figures."""

from __future__ import annotations

from time import perf_counter
from typing import Any

from .._events import StepFinished
from .._result import RunResult
from ..state._state import PendingCall, RunState, StopReason
from ..wire.chat._assemble import StreamAssembler
from ..wire.responses._assemble import ResponsesAssembler
from ..wire.responses._output import AssembledResponsesOutput
from ..wire.responses._request import CARRIED, carried
from ._calls import assistant_message, awaiting
from ._config import RunConfig
from ._execute import ToolRun
from ._held import after_tools
from ._hooks import RunHooks
from ._media import media_parts, tool_content
from ._step import with_fresh_ids
from ._step_state import StepState
from ._typed import TypedRun

__all__ = ["add_step", "answer_calls", "end_step", "run_result", "take_response"]

_CANCELLED = "cancelled: the run was stopped before this call finished"


def take_response(
    state: RunState, step: StepState, assembler: StreamAssembler | ResponsesAssembler
) -> None:
    """Keep the whole response, its call ids made unique in the conversation."""
    step.finished = perf_counter()
    step.response = response = assembler.finish()
    if step.early is not None:
        step.message = step.early.with_ids(response.message, state.used_ids)
    else:
        step.message = with_fresh_ids(response.message, state.used_ids)
    step.finish_reason = reason = response.finish_reason
    step.response_id, step.response_model = response.id, response.model
    step.usage = response.usage_summary
    if step.usage is not None:
        state.usage += step.usage
    step.not_run = (
        "length" if reason == "length"
        else "content_filter" if reason == "content_filter"
        else state.final_only
    )  # fmt: skip
    step.assistant = assistant_message(step.message)
    if isinstance(response, AssembledResponsesOutput):
        _take_responses_output(step, response)


def _take_responses_output(step: StepState, output: AssembledResponsesOutput) -> None:
    """What the Responses API adds: calls cut short never run (as after `length`), and
    what the next request needs rides on the assistant message (`CARRIED`)."""
    if output.cut_calls and step.not_run is None:
        step.not_run = "length"
    assert step.message is not None
    extra = carried(output, step.message)
    if extra:
        step.assistant[CARRIED] = extra


def end_step(state: RunState, step: StepState) -> StepFinished:
    """Add the step to the conversation and the run's totals."""
    add_step(state, step)
    info = step.info()
    state.steps.append(info)
    return StepFinished(
        step.number,
        step.finish_reason,
        step.assistant,
        info.usage,
        info.time_to_first_token,
        info.duration,
        info.tokens_per_second,
        step.response_id,
        step.response_model,
        info.cost,
        info.model,
    )


def add_step(state: RunState, step: StepState) -> None:
    """Append the assistant message and one tool message per call, in call order."""
    state.messages.append(step.assistant)
    state.messages.extend(
        [
            {"role": "tool", "tool_call_id": call.id, "content": tool_content(call)}
            for call in step.calls
        ]
    )
    state.pending = None


def answer_calls(
    state: RunState, step: StepState, runnable: list[ToolRun], by_id: dict[str, PendingCall]
) -> None:
    """Every call of a batch answered, also when the run was left or cancelled mid-way,
    so the conversation stays consistent and can be continued."""
    for run in runnable:
        call = by_id[run.id]
        call.status = "finished"
        call.output = run.output if run.finished else _CANCELLED
        if run.media and run.finished and call.media is None:
            call.media = media_parts(run.media)
    after_tools(state, step, runnable)  # agent tools: usage, paused inner runs
    unfinished = [run for run in runnable if not run.finished]
    if unfinished and "awaiting_approval" not in [call.status for call in step.calls]:
        add_step(state, step)


def run_result(
    state: RunState,
    step: StepState,
    stop: StopReason,
    started: float,
    config: RunConfig,
    typed: TypedRun | None,
    hooks: RunHooks,
    spending: dict[str, Any],
) -> RunResult[Any]:
    """What the run returns, as it ends after `step` (or pauses, calls pending)."""
    assistant = step.assistant
    paused = state.pending is not None
    output: Any = (
        typed.value if typed is not None
        else "" if paused
        else assistant.get("content") or ""
    )  # fmt: skip
    return RunResult(
        run_id=state.run_id,
        output=hooks.output(output, stop, typed is not None),
        messages=tuple(state.messages),
        new_messages=tuple(state.messages[state.first_new :]),
        stop_reason=stop,
        usage=state.usage,
        steps=tuple(state.steps),
        duration=perf_counter() - started,
        refusal=None if paused else assistant.get("refusal"),
        state=state,
        approvals=awaiting(step, config) if paused else (),
        guardrail=hooks.tripped,
        **spending,
    )
