"""Sending one attempt at a step: the request for either wire, its stream, its limits."""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeAlias

import openai

from ..state._state import RunState
from ..wire._media import chat_media
from ..wire.chat._assemble import StreamAssembler
from ..wire.chat._stream import ModelStream, event_limit
from ..wire.responses._assemble import ResponsesAssembler
from ..wire.responses._request import chat_messages, responses_params
from ..wire.responses._stream import ResponsesStream, background_events
from ._prepare import chat_overrides, responses_overrides
from ._step import stream_bounds, within_limits
from ._step_state import StepState

if TYPE_CHECKING:
    from ._config import RunConfig
    from ._typed import TypedRun

__all__ = ["Attempt", "chat_params", "open_attempt"]

Attempt: TypeAlias = tuple[
    StreamAssembler | ResponsesAssembler,
    ModelStream | ResponsesStream,
    AsyncGenerator[dict[str, Any], None],
]
"""An attempt's assembler, its stream, and the chunks (or events) to read from it."""


def open_attempt(
    config: RunConfig,
    state: RunState,
    step: StepState,
    client: openai.AsyncOpenAI,
    request: Mapping[str, Any],
    run_id: str,
    run_deadline: float,
    typed: TypedRun | None,
    view: list[dict[str, Any]] | None = None,
) -> Attempt:
    """Send one attempt at `step` on the agent's wire, bounded by its time limits.

    The run retries failed steps itself (honouring Retry-After, and also after partial
    output); the client retrying the same requests too would multiply the attempts.
    `view`: what to send of the conversation, when a context policy compacted it.
    """
    limits = config.timeouts
    step.sent = perf_counter()
    step.first_token = None
    final_only = state.final_only is not None
    options: dict[str, Any] = {
        "client_retries": not config.retries.enabled,
        "request_id": f"{run_id}-{step.number}-{step.attempt}",
        "max_event_size": event_limit(config.max_argument_size),
    }
    partial, most = config.partial_arguments, config.max_argument_size
    assembler: StreamAssembler | ResponsesAssembler
    stream: ModelStream | ResponsesStream
    source: AsyncGenerator[dict[str, Any], None] | None = None
    bounds = stream_bounds(limits, step.sent, run_deadline) if limits.bounds_streams else None
    if config.api == "responses":
        assembler = ResponsesAssembler(
            step=step.number, partial_arguments=partial, max_argument_size=most
        )
        params = responses_params(
            request, state.messages if view is None else view, model=config.model,
            extra_step=final_only,
            definitions=config.catalog.definitions() if config.tools else [],
            chain=config.chain_responses, background=config.background,
            **responses_overrides(step.overrides),
        )  # fmt: skip
        if typed is not None:
            typed.request(params, params.get("tools", []), final_only)
        if config.background:  # polled: each wait keeps a scope of its own
            stream = ResponsesStream(client, params, **options)
            source = background_events(stream, client, **options)
            bounds = None
            if limits.bounds_streams:
                step_deadline = step.sent + limits.step if limits.step else math.inf
                source = within_limits(source, limits, step_deadline, run_deadline)
        else:
            stream = ResponsesStream(client, params, bounds=bounds, **options)
    else:
        assembler = StreamAssembler(
            step=step.number, partial_arguments=partial, max_argument_size=most
        )
        params = chat_params(config, request, state, final_only, typed, view)
        if step.overrides is not None:  # this step's own, from `prepare_step`
            chat_overrides(params, step.overrides, final_only)
        stream = ModelStream(client, params, bounds=bounds, **options)
    if source is None:
        source = stream.chunks()
    return assembler, stream, source


def chat_params(
    config: RunConfig,
    request: Mapping[str, Any],
    state: RunState,
    extra_step: bool,
    typed: TypedRun | None,
    view: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The body of a Chat Completions request for the conversation so far (or `view`)."""
    params: dict[str, Any] = {
        "stream_options": {"include_usage": True},
        **request,
        "model": config.model,
        "messages": chat_media(chat_messages(state.messages if view is None else view)),
        "stream": True,
    }
    definitions = config.catalog.definitions()
    if definitions:
        params["tools"] = definitions
        if extra_step:
            params["tool_choice"] = "none"
    if typed is not None:
        typed.request(params, params.get("tools", []), extra_step)
    return params
