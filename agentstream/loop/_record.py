"""Writing a step into the run's state: its whole response, its messages, its figures."""

from __future__ import annotations

from time import perf_counter

from .._events import StepFinished
from ..state._state import RunState
from ..wire.chat._assemble import StreamAssembler
from ..wire.responses._assemble import ResponsesAssembler
from ..wire.responses._output import AssembledResponsesOutput
from ..wire.responses._request import CARRIED, carried
from ._calls import assistant_message
from ._media import tool_content
from ._step import with_fresh_ids
from ._step_state import StepState

__all__ = ["add_step", "end_step", "take_response"]


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
        {"role": "tool", "tool_call_id": call.id, "content": tool_content(call)}
        for call in step.calls
    )
    state.pending = None
