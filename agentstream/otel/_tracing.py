"""`Tracing`: OpenTelemetry spans for each run, each step, each request and each tool call.

The run, step and request spans are made from the run's events as it produces them;
tool spans from the observer hook the tool runs inside, so the spans a tool opens
itself (with the global tracer) are children of its `execute_tool` span.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import time_ns
from typing import Any

import anyio
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from agentstream import (
    ApprovalRequested,
    Event,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    StepInterrupted,
    StepStarted,
    ToolCallApproved,
    ToolCallDenied,
    ToolCallInvalid,
    ToolCallReady,
    ToolFinished,
    ToolStarted,
    WatchedRun,
    __version__,
)

from . import _attributes as attr
from ._content import input_messages, output_messages, to_json

__all__ = ["Tracing"]

_LEFT = "cancelled"


class Tracing:
    """Traces each run of an agent with OpenTelemetry: `Agent(observers=[Tracing()])`.

    A run is an `invoke_agent` span; under it, a `step N` span per step, holding a
    `chat {model}` span per request (a retried step shows each failed attempt) and an
    `execute_tool {name}` span per tool call (calls run in parallel are siblings).
    Attributes follow the OpenTelemetry semantic conventions for generative AI.

    `tracer_provider` defaults to the global one; while no SDK provider is set up, a
    run is not traced at all and costs next to nothing. Message contents, tool
    arguments and results are recorded only with `include_content=True` (they may
    hold personal data). `provider` names the `gen_ai.provider.name` (the server
    behind the OpenAI-compatible API); `agent_name` names the agent in its spans.
    """

    __slots__ = ("_agent_name", "_include_content", "_provider", "_tracer")

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        include_content: bool = False,
        provider: str = "openai",
        agent_name: str | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(
            "agentstream", __version__, tracer_provider, schema_url=attr.SCHEMA_URL
        )
        self._include_content = include_content
        self._provider = provider
        self._agent_name = agent_name

    def __repr__(self) -> str:
        return f"Tracing(provider={self._provider!r}, include_content={self._include_content})"

    def observe(self, run: WatchedRun) -> _RunSpans | None:
        """Open the run's span; None (nothing more to do) when it is not recorded."""
        name = attr.INVOKE_AGENT
        attributes: dict[str, Any] = {
            attr.OPERATION: attr.INVOKE_AGENT,
            attr.PROVIDER: self._provider,
            attr.SYSTEM: self._provider,
            attr.RUN_ID: run.run_id,
        }
        if self._agent_name:
            name = f"{name} {self._agent_name}"
            attributes[attr.AGENT_NAME] = self._agent_name
        span = self._tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes)
        if not span.is_recording():
            span.end()
            return None
        return _RunSpans(self._tracer, run, span, self._provider, self._include_content)


class _RunSpans:
    """The open spans of one run, moved along by its events and its tool calls."""

    __slots__ = (
        "_chat",
        "_chat_end",
        "_content",
        "_model",
        "_provider",
        "_run",
        "_run_span",
        "_step",
        "_tracer",
    )

    def __init__(
        self, tracer: trace.Tracer, run: WatchedRun, span: Span, provider: str, content: bool
    ) -> None:
        self._tracer = tracer
        self._run = run
        self._run_span: Span | None = span
        self._provider = provider
        self._content = content
        self._model = ""
        self._step: Span | None = None
        self._chat: Span | None = None
        self._chat_end: int | None = None
        """When the open request's response was complete (ns), before its step ends."""

    def event(self, event: Event) -> None:
        handle = _HANDLERS.get(type(event))
        if handle is not None:
            handle(self, event)

    @contextmanager
    def tool_call(self, started: ToolStarted) -> Iterator[Callable[[ToolFinished], None]]:
        attributes: dict[str, Any] = {
            attr.OPERATION: attr.EXECUTE_TOOL,
            attr.TOOL_NAME: started.name,
            attr.TOOL_CALL_ID: started.id,
            attr.TOOL_TYPE: "function",
            attr.STEP: started.step,
        }
        if self._content:
            attributes[attr.TOOL_ARGUMENTS] = to_json(started.arguments)
        parent = trace.set_span_in_context(self._step_of(started.step))
        span = self._tracer.start_span(
            f"{attr.EXECUTE_TOOL} {started.name}",
            parent,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        )
        outcome: list[ToolFinished] = []
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield outcome.append
        except BaseException as exc:
            cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
            _fail(span, _LEFT if cancelled else type(exc).__name__, "the tool was stopped")
            raise
        finally:
            otel_context.detach(token)
            if outcome:
                self._tool_finished(span, outcome[0])
            span.end()

    def end(self, error: BaseException | None) -> None:
        if self._run_span is None:
            return
        why = "the run was stopped before it finished"
        if error is not None:
            why += f" ({type(error).__name__})"
        self._close(_LEFT, why)

    # --- the events ------------------------------------------------------------------

    def _run_started(self, event: RunStarted) -> None:
        self._model = event.model
        if self._run_span is not None:
            self._run_span.set_attribute(attr.REQUEST_MODEL, event.model)

    def _step_started(self, event: StepStarted) -> None:
        step = self._step_of(event.step)
        step.set_attribute(attr.ATTEMPTS, event.attempt)
        attributes: dict[str, Any] = {
            attr.OPERATION: attr.CHAT,
            attr.PROVIDER: self._provider,
            attr.SYSTEM: self._provider,
            attr.REQUEST_MODEL: self._model,
            attr.STEP: event.step,
            attr.ATTEMPT: event.attempt,
        }
        if self._content:
            attributes[attr.INPUT_MESSAGES] = input_messages(self._run.messages)
        self._chat = self._tracer.start_span(
            f"{attr.CHAT} {self._model}",
            trace.set_span_in_context(step),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        self._chat_end = None

    def _response_complete(self, event: Event) -> None:
        if self._chat is not None and self._chat_end is None:
            self._chat_end = time_ns()

    def _approval(self, event: ApprovalRequested | ToolCallApproved | ToolCallDenied) -> None:
        self._response_complete(event)
        self._step_of(event.step).add_event(
            event.type, {attr.TOOL_NAME: event.name, attr.TOOL_CALL_ID: event.id}
        )

    def _step_interrupted(self, event: StepInterrupted) -> None:
        if self._chat is not None:
            _fail(self._chat, _error_type(event.error), str(event.error))
            self._chat.end()
            self._chat = None

    def _step_finished(self, event: StepFinished) -> None:
        self._response_complete(event)
        chat = self._chat
        if chat is not None:
            _response_attributes(chat, event)
            if event.model is not None and event.model != self._model:
                chat.set_attribute(attr.REQUEST_MODEL, event.model)  # a fallback answered
                chat.set_attribute(attr.FALLBACK, True)
                chat.update_name(f"{attr.CHAT} {event.model}")
            if self._content:
                chat.set_attribute(
                    attr.OUTPUT_MESSAGES, output_messages(event.message, event.finish_reason)
                )
        self._end_step()

    def _run_finished(self, event: RunFinished) -> None:
        result = event.result
        span = self._run_span
        if span is None:
            return
        self._end_step()  # still open when the run pauses for an approval
        span.set_attributes(
            {
                attr.INPUT_TOKENS: result.usage.prompt_tokens,
                attr.OUTPUT_TOKENS: result.usage.completion_tokens,
                attr.STOP_REASON: result.stop_reason,
                attr.STEPS: len(result.steps),
            }
        )
        if result.cost is not None:
            span.set_attribute(attr.COST, result.cost)
        if result.usage_limit is not None:
            span.set_attribute(attr.USAGE_LIMIT, result.usage_limit)
        span.end()
        self._run_span = None

    def _run_failed(self, event: RunFailed) -> None:
        self._close(_error_type(event.error), str(event.error))

    # --- helpers ---------------------------------------------------------------------

    def _tool_finished(self, span: Span, finished: ToolFinished) -> None:
        if finished.truncated:
            span.set_attribute(attr.TRUNCATED, True)
        if finished.error is not None:
            # An exception's text may quote personal data, like the arguments it is about.
            why = str(finished.error) if self._content else type(finished.error).__name__
            _fail(span, type(finished.error).__name__, why)
        elif self._content:
            span.set_attribute(attr.TOOL_RESULT, finished.output)

    def _step_of(self, number: int) -> Span:
        """The open step's span, opened here for a step resumed from a saved state."""
        if self._step is None:
            self._step = self._tracer.start_span(
                f"step {number}",
                trace.set_span_in_context(self._run_span or trace.INVALID_SPAN),
                kind=SpanKind.INTERNAL,
                attributes={attr.STEP: number},
            )
        return self._step

    def _end_step(self, error: tuple[str, str] | None = None) -> None:
        """End the open request and step spans, if any; with `error`, as failed."""
        if self._chat is not None:
            if error is not None and self._chat_end is None:
                _fail(self._chat, *error)  # cut off mid-response; a whole one stays good
            self._chat.end(self._chat_end)
            self._chat = None
        if self._step is not None:
            if error is not None:
                _fail(self._step, *error)
            self._step.end()
            self._step = None

    def _close(self, error_type: str, description: str) -> None:
        """End every span still open, innermost first, with an error."""
        self._end_step((error_type, description))
        if self._run_span is not None:
            _fail(self._run_span, error_type, description)
            self._run_span.end()
            self._run_span = None


_HANDLERS: dict[type, Callable[[_RunSpans, Any], None]] = {
    RunStarted: _RunSpans._run_started,
    StepStarted: _RunSpans._step_started,
    StepInterrupted: _RunSpans._step_interrupted,
    ToolCallReady: _RunSpans._response_complete,
    ToolCallInvalid: _RunSpans._response_complete,
    ApprovalRequested: _RunSpans._approval,
    ToolCallApproved: _RunSpans._approval,
    ToolCallDenied: _RunSpans._approval,
    StepFinished: _RunSpans._step_finished,
    RunFinished: _RunSpans._run_finished,
    RunFailed: _RunSpans._run_failed,
}


def _response_attributes(span: Span, event: StepFinished) -> None:
    attributes: dict[str, Any] = {}
    if event.response_id:
        attributes[attr.RESPONSE_ID] = event.response_id
    if event.response_model:
        attributes[attr.RESPONSE_MODEL] = event.response_model
    if event.finish_reason:
        attributes[attr.FINISH_REASONS] = (event.finish_reason,)
    if event.usage is not None:
        attributes[attr.INPUT_TOKENS] = event.usage.prompt_tokens
        attributes[attr.OUTPUT_TOKENS] = event.usage.completion_tokens
        if event.usage.cached_tokens:
            attributes[attr.CACHED_INPUT_TOKENS] = event.usage.cached_tokens
        if event.usage.reasoning_tokens:
            attributes[attr.REASONING_TOKENS] = event.usage.reasoning_tokens
    if event.time_to_first_token is not None:
        attributes[attr.TIME_TO_FIRST_CHUNK] = event.time_to_first_token
    if event.tokens_per_second is not None:
        attributes[attr.TOKENS_PER_SECOND] = event.tokens_per_second
    if event.cost is not None:
        attributes[attr.COST] = event.cost
    span.set_attributes(attributes)


def _error_type(error: BaseException) -> str:
    """A short, low-cardinality name: the HTTP status the server answered, or the class."""
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return str(status)
    return type(error).__name__


def _fail(span: Span, error_type: str, description: str) -> None:
    span.set_attribute(attr.ERROR_TYPE, error_type)
    span.set_status(Status(StatusCode.ERROR, description))
