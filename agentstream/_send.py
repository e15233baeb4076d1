"""Sending one attempt at a step: the request for either wire, its stream, its limits."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeAlias

import openai

from ._assemble import StreamAssembler
from ._model import ModelStream, event_limit
from ._responses import ResponsesAssembler
from ._responses_model import ResponsesStream, background_events
from ._responses_request import chat_messages, responses_params
from ._state import RunState, StepState
from ._step import within_limits

if TYPE_CHECKING:
    from ._agent import Agent
    from ._typed import TypedRun

__all__ = ["Attempt", "chat_params", "open_attempt"]

Attempt: TypeAlias = tuple[
    StreamAssembler | ResponsesAssembler,
    ModelStream | ResponsesStream,
    AsyncGenerator[dict[str, Any], None],
]
"""An attempt's assembler, its stream, and the chunks (or events) to read from it."""


def open_attempt(
    agent: Agent[Any],
    state: RunState,
    step: StepState,
    client: openai.AsyncOpenAI,
    request: dict[str, Any],
    run_id: str,
    run_deadline: float,
    typed: TypedRun | None,
) -> Attempt:
    """Send one attempt at `step` on the agent's wire, bounded by its time limits.

    The run retries failed steps itself (honouring Retry-After, and also after partial
    output); the client retrying the same requests too would multiply the attempts.
    """
    limits = agent.timeouts
    step.sent = perf_counter()
    step.first_token = None
    final_only = state.final_only is not None
    options: dict[str, Any] = {
        "client_retries": not agent.retries.enabled,
        "request_id": f"{run_id}-{step.number}-{step.attempt}",
        "max_event_size": event_limit(agent.max_argument_size),
    }
    partial, most = agent.partial_arguments, agent.max_argument_size
    assembler: StreamAssembler | ResponsesAssembler
    stream: ModelStream | ResponsesStream
    source: AsyncGenerator[dict[str, Any], None] | None = None
    if agent.api == "responses":
        assembler = ResponsesAssembler(
            step=step.number, partial_arguments=partial, max_argument_size=most
        )
        params = responses_params(agent, request, state.messages, final_only)
        if typed is not None:
            typed.request(params, params.get("tools", []), final_only)
        stream = ResponsesStream(client, params, **options)
        if agent.background:
            source = background_events(stream, client, **options)
    else:
        assembler = StreamAssembler(
            step=step.number, partial_arguments=partial, max_argument_size=most
        )
        params = chat_params(agent, request, state, final_only, typed)
        stream = ModelStream(client, params, **options)
    if source is None:
        source = stream.chunks()
    if limits.bounds_streams:
        step_deadline = step.sent + limits.step if limits.step else math.inf
        source = within_limits(source, limits, step_deadline, run_deadline)
    return assembler, stream, source


def chat_params(
    agent: Agent[Any],
    request: dict[str, Any],
    state: RunState,
    extra_step: bool,
    typed: TypedRun | None,
) -> dict[str, Any]:
    """The body of a Chat Completions request for the conversation so far."""
    params: dict[str, Any] = {
        "stream_options": {"include_usage": True},
        **request,
        "model": agent.model,
        "messages": chat_messages(state.messages),
        "stream": True,
    }
    if agent.tools:
        params["tools"] = agent._tool_definitions()
        if extra_step:
            params["tool_choice"] = "none"
    if typed is not None:
        typed.request(params, params.get("tools", []), extra_step)
    return params
