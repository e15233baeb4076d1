"""A run's events as the Vercel AI SDK UI message stream (sans-I/O).

`UIStreamEncoder.feed(event)` returns the UI message chunks (plain dicts) that an
agentstream event becomes, in the protocol of the `ai` npm package's current major (7):
`start`, `start-step`, `text-*`, `reasoning-*`, `tool-input-*`, `tool-output-*`,
`reset-step`, `finish-step`, `message-metadata`, `error`, `finish`. Every event kind is
mapped in one place, `UIStreamEncoder.feed`; a new kind (approvals, tool progress) is one
more `case` there.

Besides the protocol's parts, the encoder sends transient `data-agentstream` parts
(`{"kind": ..., "t": seconds since the run started, ...}`) at the edges of each step and
tool, which the bundled page draws as its timeline. Clients that do not know them drop
them: transient data parts are never added to the message. An agent tool's inner run
also becomes `data-subrun` parts, kept in the message (see `_nested`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agentstream import (
    ApprovalRequested,
    ContextCompacted,
    Event,
    FallbackUsed,
    File,
    GuardrailChecked,
    Image,
    MaxStepsReached,
    MessageDelivered,
    MessageQueued,
    OutputDelta,
    OutputInvalid,
    OutputReady,
    ReasoningDelta,
    RefusalDelta,
    RunFailed,
    RunFinished,
    RunStarted,
    ServerError,
    StepFinished,
    StepInterrupted,
    StepPrepared,
    StepStarted,
    SubRunEvent,
    TextDelta,
    ToolCallApproved,
    ToolCallDelta,
    ToolCallDenied,
    ToolCallInvalid,
    ToolCallReady,
    ToolCallStarted,
    ToolCancelled,
    ToolFinished,
    ToolPaused,
    ToolProgress,
    ToolQueued,
    ToolStarted,
    Usage,
    UsageLimitReached,
    event_to_dict,
)

from ._nested import NestedParts

__all__ = ["UI_STREAM_HEADERS", "Chunk", "UIStreamEncoder", "error_text", "usage_dict"]

ToolEvent = (
    ToolCallStarted | ToolCallDelta | ToolCallReady | ToolCallInvalid | ApprovalRequested
    | ToolCallApproved | ToolCallDenied | ToolStarted | ToolProgress | ToolCancelled
    | ToolFinished | ToolQueued
)  # fmt: skip
_TOOL_EVENTS = (
    ToolCallStarted, ToolCallDelta, ToolCallReady, ToolCallInvalid, ApprovalRequested,
    ToolCallApproved, ToolCallDenied, ToolStarted, ToolProgress, ToolCancelled, ToolFinished,
    ToolQueued,
)  # fmt: skip

Chunk = dict[str, Any]
"""One UI message stream part, JSON-ready."""

UI_STREAM_HEADERS = {
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
    "x-vercel-ai-ui-message-stream": "v1",
}
"""The headers the `ai` package's readers expect (besides `content-type: text/event-stream`)."""

_FINISH_REASONS = {
    "answer": "stop",
    "length": "length",
    "content_filter": "content-filter",
    "refusal": "content-filter",
    "approval_required": "tool-calls",  # as the AI SDK ends a step waiting for approvals
    "guardrail": "content-filter",  # the nearest of the AI SDK's reasons: a check withheld it
}


def error_text(error: BaseException) -> str:
    """What a client is told about an error: its type and message, never a traceback."""
    message = str(error).strip()
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def usage_dict(usage: Usage | None) -> dict[str, int] | None:
    """Token counts as JSON, in the AI SDK's names."""
    if usage is None:
        return None
    return {
        "inputTokens": usage.prompt_tokens,
        "outputTokens": usage.completion_tokens,
        "totalTokens": usage.total_tokens,
        "reasoningTokens": usage.reasoning_tokens,
        "cachedInputTokens": usage.cached_tokens,
    }


@dataclass(slots=True)
class _Step:
    """What is open in the step being streamed."""

    number: int
    text: str | None = None  # the id of the open text part
    reasoning: str | None = None
    calls: dict[int, str] = field(default_factory=dict)  # call index -> UI tool call id
    parts: int = 0  # text and reasoning parts opened so far, for their ids


class UIStreamEncoder:
    """Turns the events of one run into UI message stream parts, one event at a time.

    `feed` takes the event and its time in seconds since the run started (for the
    timeline parts). No I/O and no clock of its own, so a test can feed it any events.
    """

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self._run_id = ""
        self._step: _Step | None = None
        self._tool_ids: dict[tuple[int, int], str] = {}  # (step, index) -> UI id
        self._steps: list[dict[str, Any]] = []
        self.finished = False
        self._subruns = NestedParts(message_id)  # agent tools' inner runs
        self.call_ids: dict[str, str] = {}
        """The run's id of each call that started or queued, by its UI id (they differ
        when the server's id was missing or taken)."""

    def feed(self, event: Event, t: float = 0.0) -> list[Chunk]:
        """The parts `event` becomes; `t` is seconds since the run started."""
        if isinstance(event, _TOOL_EVENTS):
            return self._feed_tool(event, t)
        match event:
            case RunStarted(run_id=run_id):
                self._run_id = run_id
                started = {"runId": run_id, "model": event.model}
                return [{"type": "start", "messageId": self.message_id, "messageMetadata": started}]
            case StepStarted(step=step, attempt=attempt):
                self._step = _Step(step)
                timing = _timing("step_started", t, step=step, attempt=attempt)
                return [{"type": "start-step"}, timing]
            case TextDelta(text=text) | RefusalDelta(text=text):
                return self._text(text)
            case ReasoningDelta(text=text):
                return self._reasoning(text)
            case ServerError(message=message):
                return [{"type": "error", "errorText": f"ServerError: {message}"}]
            case StepInterrupted():
                return self._interrupted(event, t)
            case StepFinished():
                return self._step_finished(event, t)
            case MaxStepsReached(max_steps=max_steps):
                return [_timing("max_steps_reached", t, maxSteps=max_steps)]
            case ContextCompacted():
                figures = {"dropped": event.dropped, "shortened": event.shortened}
                return [_timing("context_compacted", t, step=event.step, **figures)]
            case UsageLimitReached(limit=limit, value=value, maximum=maximum):
                return [
                    _timing("usage_limit_reached", t, limit=limit, value=value, maximum=maximum)
                ]
            case FallbackUsed(step=step, model=model, failed_model=failed):
                return [_timing("fallback_used", t, step=step, model=model, failedModel=failed)]
            case OutputDelta() | OutputReady() | OutputInvalid():
                return [self._output(event)]
            case RunFinished(result=result):
                self.finished = True
                reason = _FINISH_REASONS.get(result.stop_reason, "other")
                meta: dict[str, Any] = {
                    "runId": self._run_id,
                    "stopReason": result.stop_reason,
                    "usage": usage_dict(result.usage),
                    "duration": result.duration,
                    "steps": self._steps,
                }
                return [{"type": "finish", "finishReason": reason, "messageMetadata": meta}]
            case SubRunEvent() | ToolPaused():
                return self._nested(event, t)
            case MessageQueued() | MessageDelivered():
                return [*self._close_text(), _steer_part(event)]
            case StepPrepared(step=step, model=model, tools=tools, tool_choice=choice):
                shaped = {"model": model, "tools": tools, "toolChoice": choice}
                return [_timing("step_prepared", t, step=step, **shaped)]
            case GuardrailChecked(step=step, stage=stage, name=name, tripped=tripped):
                said = None if tripped is None else tripped.message
                return [
                    _timing("guardrail_checked", t, step=step, stage=stage, name=name, tripped=said)
                ]
            case RunFailed(error=error):
                self.finished = True
                return [
                    *self._close_text(),
                    {"type": "error", "errorText": error_text(error)},
                    {"type": "finish", "finishReason": "error"},
                ]

    def _feed_tool(self, event: ToolEvent, t: float) -> list[Chunk]:
        """The parts a tool call's event becomes."""
        match event:
            case ToolCallStarted():
                return [*self._close_text(), self._tool_start(event.step, event.index, event)]
            case ToolCallDelta(step=step, index=index, delta=delta):
                chunks = [] if self._known(step, index) else [self._tool_start(step, index, event)]
                call = self._tool_ids[step, index]
                delta_part = {
                    "type": "tool-input-delta",
                    "toolCallId": call,
                    "inputTextDelta": delta,
                }
                return [*chunks, delta_part]
            case ToolCallReady(step=step, index=index, name=name, arguments=arguments):
                call = self._tool_id(step, index, event.id)
                available = {"type": "tool-input-available", "toolCallId": call}
                return [{**available, "toolName": name, "input": arguments}]
            case ToolCallInvalid(step=step, index=index):
                call = self._tool_id(step, index, event.id)
                return [{
                    "type": "tool-input-error", "toolCallId": call, "toolName": event.name or "",
                    "input": _raw_input(event.raw_arguments), "errorText": event.error,
                }]  # fmt: skip
            case ApprovalRequested(step=step, index=index, name=name, arguments=arguments):
                call = self._tool_id(step, index, event.id)
                available = {"type": "tool-input-available", "toolCallId": call}
                request = {"type": "tool-approval-request", "approvalId": event.id}
                return [{**available, "toolName": name, "input": arguments},
                        {**request, "toolCallId": call}]  # fmt: skip
            case ToolCallApproved():
                return []
            case ToolCallDenied(step=step, index=index):
                call = self._tool_id(step, index, event.id)
                return [{"type": "tool-output-denied", "toolCallId": call}]
            case ToolStarted(step=step, index=index):
                call = self._tool_id(step, index, event.id)
                self.call_ids[call] = event.id
                shown = _short(event.arguments)
                return [
                    _timing(
                        "tool_started", t, step=step, toolCallId=call, toolName=event.name,
                        arguments=shown,
                    )
                ]  # fmt: skip
            case ToolProgress(step=step, index=index):
                call = self._tool_id(step, index, event.id)
                return [
                    _timing(
                        "tool_progress", t, step=step, toolCallId=call, fraction=event.fraction,
                        message=event.message, output=event.output,
                    )
                ]  # fmt: skip
            case ToolQueued(step=step, index=index):
                call = self._tool_id(step, index, event.id)
                self.call_ids[call] = event.id
                return [_timing("tool_queued", t, step=step, toolCallId=call)]
            case ToolCancelled(step=step, index=index, reason=reason, answered=True):
                return self._tool_cancelled(event, t)
            case ToolCancelled(step=step, index=index, reason=reason):
                call = self._tool_id(step, index, event.id)
                cancelled = _timing("tool_cancelled", t, step=step, toolCallId=call)
                return [cancelled, {"type": "tool-output-error", "toolCallId": call,
                                    "errorText": f"withdrawn: {reason}"}]  # fmt: skip
            case ToolFinished(step=step, index=index):
                return self._tool_finished(event, t)

    def _output(self, event: OutputDelta | OutputReady | OutputInvalid) -> Chunk:
        """A typed answer as one `data-output` part, updated in place (one id per run).

        `{"status": "streaming", "partial", "completed"}` while it streams, then
        `{"status": "ready", "value"}` or `{"status": "invalid", "error"}` (the model is
        asked again, and the next partial values replace it).
        """
        data = event_to_dict(event)  # JSON-ready values (models dumped)
        del data["type"]
        status = {"output_delta": "streaming", "output_ready": "ready"}.get(event.type, "invalid")
        data.pop("raw", None)
        return {
            "type": "data-output",
            "id": f"output-{self._run_id}",
            "data": {"status": status, **data},
        }

    def _nested(self, event: SubRunEvent | ToolPaused, t: float) -> list[Chunk]:
        """An agent tool's inner event, or its pause: a transient outline of the event
        (its kind, its text or its tool's name), and the nested cards' parts (`_nested`)."""
        call = self._tool_id(event.step, event.index, event.id)
        if isinstance(event, ToolPaused):
            waiting = [request.id for request in event.approvals]
            paused = _timing("tool_paused", t, step=event.step, toolCallId=call, approvals=waiting)
            return [*self._subruns.end(call), paused]
        return self._subruns.feed(event, call, t)

    def stopped(self, reason: str, t: float = 0.0) -> list[Chunk]:
        """The parts that end a run stopped from outside (the user, a disconnect)."""
        self.finished = True
        timing = _timing("run_stopped", t, reason=reason)
        return [*self._close_text(), timing, {"type": "abort", "reason": reason}]

    def _text(self, text: str) -> list[Chunk]:
        step = self._current()
        chunks: list[Chunk] = []
        if step.text is None:
            chunks.extend(self._close_reasoning())
            step.parts += 1
            step.text = f"{self.message_id}-{step.number}-{step.parts}"
            chunks.append({"type": "text-start", "id": step.text})
        chunks.append({"type": "text-delta", "id": step.text, "delta": text})
        return chunks

    def _reasoning(self, text: str) -> list[Chunk]:
        step = self._current()
        chunks: list[Chunk] = []
        if step.reasoning is None:
            chunks.extend(self._close_text())
            step.parts += 1
            step.reasoning = f"{self.message_id}-{step.number}-{step.parts}"
            chunks.append({"type": "reasoning-start", "id": step.reasoning})
        chunks.append({"type": "reasoning-delta", "id": step.reasoning, "delta": text})
        return chunks

    def _close_text(self) -> list[Chunk]:
        step = self._step
        if step is None:
            return []
        chunks = self._close_reasoning()
        if step.text is not None:
            chunks.append({"type": "text-end", "id": step.text})
            step.text = None
        return chunks

    def _close_reasoning(self) -> list[Chunk]:
        step = self._step
        if step is None or step.reasoning is None:
            return []
        chunk = {"type": "reasoning-end", "id": step.reasoning}
        step.reasoning = None
        return [chunk]

    def _current(self) -> _Step:
        if self._step is None:  # an assembler's events fed without a StepStarted
            self._step = _Step(0)
        return self._step

    def _known(self, step: int, index: int) -> bool:
        return (step, index) in self._tool_ids

    def _tool_id(self, step: int, index: int, given: str | None) -> str:
        """The UI id of a call: the first id the server gave, else one of our own."""
        key = (step, index)
        if key not in self._tool_ids:
            self._tool_ids[key] = given or f"{self._run_id or self.message_id}-{step}-{index}"
        return self._tool_ids[key]

    def _tool_start(self, step: int, index: int, event: ToolCallStarted | ToolCallDelta) -> Chunk:
        call = self._tool_id(step, index, event.id)
        return {"type": "tool-input-start", "toolCallId": call, "toolName": event.name}

    def _tool_cancelled(self, event: ToolCancelled, t: float) -> list[Chunk]:
        """A call cancelled on request: a data part the page keeps on its card (the
        `ToolFinished` that follows carries what the model is told)."""
        call = self._tool_id(event.step, event.index, event.id)
        timing = _timing("tool_cancelled", t, step=event.step, toolCallId=call)
        data = {"toolCallId": call, "reason": event.reason}
        cancelled = {"type": "data-tool-cancelled", "id": f"cancel-{call}", "data": data}
        return [*self._subruns.end(call, stopped=True), timing, cancelled]

    def _tool_finished(self, event: ToolFinished, t: float) -> list[Chunk]:
        call = self._tool_id(event.step, event.index, event.id)
        timing = _timing(
            "tool_finished", t, step=event.step, toolCallId=call, ok=event.ok,
            duration=event.duration,
        )  # fmt: skip
        inner = self._subruns.end(call, stopped=True)  # an agent call: what is still open
        if event.error is not None:
            # The output is what the model is told, and it says what went wrong.
            failed = {"type": "tool-output-error", "toolCallId": call, "errorText": event.output}
            return [*inner, failed, timing]
        output = {"type": "tool-output-available", "toolCallId": call, "output": event.output}
        if event.media:
            return [*inner, output, *_media_parts(call, event.media), timing]
        return [*inner, output, timing]

    def _interrupted(self, event: StepInterrupted, t: float) -> list[Chunk]:
        # `reset-step` removes the step's parts from the message: the retry streams anew.
        self._step = None
        for index in event.retracted_calls:
            self._tool_ids.pop((event.step, index), None)
        timing = _timing(
            "step_interrupted", t, step=event.step, attempt=event.attempt,
            error=error_text(event.error), retryIn=event.retry_in,
        )  # fmt: skip
        return [{"type": "reset-step"}, timing]

    def _step_finished(self, event: StepFinished, t: float) -> list[Chunk]:
        metrics = {
            "step": event.step,
            "finishReason": event.finish_reason,
            "timeToFirstToken": event.time_to_first_token,
            "duration": event.duration,
            "tokensPerSecond": event.tokens_per_second,
            "usage": usage_dict(event.usage),
        }
        self._steps.append(metrics)
        chunks = self._close_text()
        self._step = None
        return [
            *chunks,
            {"type": "finish-step"},
            _timing("step_finished", t, **metrics),
            {"type": "message-metadata", "messageMetadata": {"steps": list(self._steps)}},
        ]


def _steer_part(event: MessageQueued | MessageDelivered) -> Chunk:
    """A message sent to the run, as one `data-steer` part updated in place: queued, then
    delivered before the request of `step`."""
    delivered = isinstance(event, MessageDelivered)
    data = {
        "status": "delivered" if delivered else "queued",
        "text": event.text,
        "step": event.step,
    }
    return {"type": "data-steer", "id": f"steer-{event.id}", "data": data}


def _timing(kind: str, t: float, **data: Any) -> Chunk:
    return {"type": "data-agentstream", "transient": True, "data": {"kind": kind, "t": t, **data}}


def _short(arguments: Mapping[str, Any], limit: int = 40) -> str:
    """The arguments' values in a few characters, for a label."""
    text = ", ".join(str(value) for value in arguments.values())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _raw_input(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def chunk_of(chunk: Mapping[str, Any]) -> str:
    """One part as compact JSON."""
    return json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))


def _media_parts(call: str, media: tuple[Any, ...]) -> list[Chunk]:
    """A tool's images and files as `data-tool-media` parts, one each.

    Transient: a client keeps them out of the messages it sends back with the next
    turn (the model already has them, and they would swell every request); `useChat`
    hands them to `onData`. The page draws an image as an `<img>` from its data URL.
    """
    return [
        {
            "type": "data-tool-media",
            "data": {
                "toolCallId": call,
                "mediaType": item.media_type,
                "url": item.data_url,
                "filename": getattr(item, "name", None),
                "size": len(item.data),
            },
            "transient": True,
        }
        for item in media
        if isinstance(item, (Image, File))
    ]
