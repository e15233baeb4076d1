"""Replies as HTTP answers: status, headers and pre-encoded body events (no I/O).

An `Answer` is everything a transport or the loopback server needs: they write
`events[i]` after sleeping `delays[i]`, and nothing else is computed while sending.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from ._chunks import Stamp, completion, default_usage, stream_chunks
from ._reply import Fault, Reply
from ._request import ModelRequest

__all__ = ["Answer", "Pace", "error_answer", "json_answer", "render"]

DONE = b"data: [DONE]\n\n"
MALFORMED = b'data: {"choices": [\n\n'
_JSON = (("content-type", "application/json"),)
_SSE = (("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache"))
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


@dataclass(frozen=True, slots=True)
class Pace:
    """How fast the model answers."""

    ttft: float = 0.0
    tokens_per_second: float | None = None

    @property
    def interval(self) -> float:
        return 1.0 / self.tokens_per_second if self.tokens_per_second else 0.0


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, ready to send."""

    status: int
    headers: tuple[tuple[str, str], ...]
    events: tuple[bytes, ...]
    """Body pieces, each written at once: SSE events, or one JSON document."""
    delays: tuple[float, ...]
    """Seconds to wait before each event."""
    tail_delay: float = 0.0
    """Seconds to wait after the last event, before the body ends."""
    broken: bool = False
    """Break the connection instead of ending the body."""
    streaming: bool = False


def dumps(value: Any) -> bytes:
    """Compact JSON, as servers send it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def sse(payload: Mapping[str, Any] | str) -> bytes:
    """One `data:` event; a str payload is sent verbatim."""
    data = payload.encode() if isinstance(payload, str) else dumps(payload)
    return b"data: " + data + b"\n\n"


def json_answer(
    status: int,
    body: Any,
    *,
    headers: tuple[tuple[str, str], ...] = (),
    delay: float = 0.0,
) -> Answer:
    """A complete JSON answer."""
    return Answer(status, _JSON + headers, (dumps(body),), (delay,))


def error_body(status: int, message: str, *, code: str | None = None) -> dict[str, Any]:
    """An OpenAI-shaped error body."""
    kind = "server_error" if status >= 500 else _ERROR_TYPES.get(status, "invalid_request_error")
    if code is None and status == 429:
        code = "rate_limit_exceeded"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def error_answer(
    status: int,
    message: str,
    *,
    code: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    delay: float = 0.0,
) -> Answer:
    """An HTTP error with an OpenAI-shaped JSON body."""
    return json_answer(status, error_body(status, message, code=code), headers=headers, delay=delay)


def render(
    reply: Reply,
    request: ModelRequest,
    stamp: Stamp,
    pace: Pace,
    headers: tuple[tuple[str, str], ...] = (),
) -> Answer:
    """The answer to `request` made from `reply`."""
    fault = reply.fault
    if fault is not None and fault.status is not None:
        return _status_answer(fault, fault.status, pace, headers)
    if not request.stream:
        return _json_reply(reply, request, stamp, pace, headers)
    if reply.chunks is not None:
        chunks: Sequence[Mapping[str, Any] | str] = reply.chunks
    else:
        usage = _usage(reply, request)
        chunks = stream_chunks(reply, stamp, usage, include_usage=request.include_usage)
    return _stream_answer([sse(c) for c in chunks], fault, pace, _SSE + headers)


def _usage(reply: Reply, request: ModelRequest) -> dict[str, Any]:
    if reply.usage is not None:
        return dict(reply.usage)
    return default_usage(reply, len(request.content))


def _status_answer(
    fault: Fault, status: int, pace: Pace, headers: tuple[tuple[str, str], ...]
) -> Answer:
    if fault.retry_after is not None:
        headers += (
            ("retry-after", f"{fault.retry_after:g}"),
            ("retry-after-ms", f"{fault.retry_after * 1000:g}"),
        )
    message = fault.message or f"Scripted fault: HTTP {status} {_phrase(status)}."
    return error_answer(status, message, headers=headers, delay=pace.ttft)


def _json_reply(
    reply: Reply,
    request: ModelRequest,
    stamp: Stamp,
    pace: Pace,
    headers: tuple[tuple[str, str], ...],
) -> Answer:
    if reply.chunks is not None:
        message = "This scripted reply holds raw chunks; request it with stream=true."
        return error_answer(400, message, headers=headers)
    fault = reply.fault or Fault()
    delay = pace.ttft + fault.stall_seconds
    if fault.error_after is not None:
        message = fault.message or "The server had an error while processing your request."
        return error_answer(500, message, headers=headers, delay=delay)
    body = dumps(completion(reply, stamp, _usage(reply, request)))
    if fault.drop_after is not None:
        return Answer(200, _JSON + headers, (), (), tail_delay=delay, broken=True)
    if fault.malformed_after is not None:
        body = body[: len(body) // 2]
    return Answer(200, _JSON + headers, (body,), (delay,))


def _stream_answer(
    chunks: list[bytes], fault: Fault | None, pace: Pace, headers: tuple[tuple[str, str], ...]
) -> Answer:
    fault = fault or Fault()
    broken = False
    if fault.drop_after is not None:
        events = chunks[: fault.drop_after]
        broken = True
    elif fault.error_after is not None:
        message = fault.message or "The server had an error while processing your request."
        error = error_body(500, message)["error"]
        events = [*chunks[: fault.error_after], b"event: error\n" + sse({"error": error})]
    elif fault.malformed_after is not None:
        n = fault.malformed_after
        events = [*chunks[:n], MALFORMED, *chunks[n:]]
        if not fault.no_done:
            events.append(DONE)
    else:
        events = chunks if fault.no_done else [*chunks, DONE]

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


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
