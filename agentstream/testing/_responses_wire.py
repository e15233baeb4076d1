"""A `Reply` as an HTTP answer on the Responses API: SSE with `event:` lines (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._chunks import Stamp, default_usage
from ._reply import Fault, Reply
from ._request import ModelRequest
from ._responses_events import failed_events, responses_events, responses_usage
from ._wire import _SSE, Answer, Pace, _status_answer, dumps, error_answer, json_answer

__all__ = ["render_responses", "resume_responses"]

_MALFORMED = b'event: response.output_text.delta\ndata: {"type": "response.output_text.delta",\n\n'


def _event(payload: Mapping[str, Any] | str) -> bytes:
    """One SSE event with its `event:` line (the payload's `type`); a str goes verbatim."""
    if isinstance(payload, str):
        return b"data: " + payload.encode() + b"\n\n"
    kind = payload.get("type")
    head = b"event: " + kind.encode() + b"\n" if isinstance(kind, str) else b""
    return head + b"data: " + dumps(payload) + b"\n\n"


def _wants_encrypted(request: ModelRequest) -> bool:
    include = request.body.get("include") if isinstance(request.body, dict) else None
    return isinstance(include, list) and "reasoning.encrypted_content" in include


def _response_id(events: Sequence[Mapping[str, Any] | str]) -> str | None:
    """The id the events give their response (raw events keep their own)."""
    for event in events:
        response = event.get("response") if isinstance(event, Mapping) else None
        if isinstance(response, Mapping) and isinstance(response.get("id"), str):
            return str(response["id"])
    return None


def render_responses(
    reply: Reply,
    request: ModelRequest,
    stamp: Stamp,
    pace: Pace,
    headers: tuple[tuple[str, str], ...] = (),
    kept: dict[str, list[Mapping[str, Any] | str]] | None = None,
) -> Answer:
    """The answer to a Responses API `request` made from `reply`.

    A background request's events are kept whole in `kept`, under the response's id,
    whatever fault cuts this answer: `resume_responses` streams them again.

    The fault switches act on events as they do on chunks: `drop_after` breaks the
    body after N events, `error_after` sends an `error` event and `response.failed`
    after N events, `malformed_after` sends an event that is not JSON after N events.
    No `[DONE]` is sent, as OpenAI sends none on this API.
    """
    fault = reply.fault
    if fault is not None and fault.status is not None:
        return _status_answer(fault, fault.status, pace, headers)
    usage = responses_usage(
        reply.usage if reply.usage is not None else default_usage(reply, len(request.content))
    )
    encrypted = f"scripted-encrypted:{stamp.completion_id}" if _wants_encrypted(request) else None
    if reply.chunks is not None:
        events: Sequence[Mapping[str, Any] | str] = reply.chunks
    else:
        events = responses_events(reply, stamp, usage, encrypted=encrypted)
    if kept is not None and isinstance(request.body, dict) and request.body.get("background"):
        kept[_response_id(events) or stamp.completion_id] = list(events)
    if not request.stream:
        return _whole(events, fault, headers, pace)
    return _stream(events, stamp, fault or Fault(), pace, _SSE + headers)


def _whole(
    events: Sequence[Mapping[str, Any] | str],
    fault: Fault | None,
    headers: tuple[tuple[str, str], ...],
    pace: Pace,
) -> Answer:
    """A non-streamed answer: the response object of the last terminal event."""
    if fault is not None and fault.error_after is not None:
        message = fault.message or "The server had an error while processing your request."
        return error_answer(500, message, headers=headers, delay=pace.ttft)
    for event in reversed(events):
        if isinstance(event, Mapping) and isinstance(event.get("response"), Mapping):
            return json_answer(200, event["response"], headers=headers, delay=pace.ttft)
    return error_answer(400, "This scripted reply has no response; stream it.", headers=headers)


def _stream(
    payloads: Sequence[Mapping[str, Any] | str],
    stamp: Stamp,
    fault: Fault,
    pace: Pace,
    headers: tuple[tuple[str, str], ...],
) -> Answer:
    events = [_event(payload) for payload in payloads]
    broken = False
    if fault.drop_after is not None:
        events = events[: fault.drop_after]
        broken = True
    elif fault.error_after is not None:
        message = fault.message or "The server had an error while processing your request."
        n = fault.error_after
        events = [*events[:n], *map(_event, failed_events(n, stamp, message))]
    elif fault.malformed_after is not None:
        n = fault.malformed_after
        events = [*events[:n], _MALFORMED, *events[n:]]
    delays = [pace.interval] * len(events)
    tail = 0.0
    if delays:
        delays[0] = pace.ttft
    else:
        tail = pace.ttft
    if fault.stall_after is not None:
        if fault.stall_after < len(delays):
            delays[fault.stall_after] += fault.stall_seconds
        else:
            tail += fault.stall_seconds
    return Answer(200, headers, tuple(events), tuple(delays), tail, broken, streaming=True)


def resume_responses(events: Sequence[Mapping[str, Any] | str], query: str, pace: Pace) -> Answer:
    """`GET /responses/{id}`: with `stream=true`, the kept events after `starting_after`
    (all of them without it); else the response object as it ended."""
    fields = dict(part.partition("=")[::2] for part in query.split("&") if part)
    if fields.get("stream") != "true":
        return _whole(events, None, (), pace)
    try:
        after = int(fields.get("starting_after", "-1"))
    except ValueError:
        return error_answer(400, "starting_after must be an integer.")
    rest = [
        event
        for event in events
        if not isinstance(event, Mapping) or event.get("sequence_number", after + 1) > after
    ]
    return _stream(rest, None, Fault(), pace, _SSE)  # type: ignore[arg-type]
