"""Replaying a recorded Responses API stream: the pure part of `agentstream replay`.

A recording is either JSON lines (one event payload per line, as in
`tests/recordings/responses`) or a raw SSE body (`event:` and `data:` lines, comments,
a closing `data: [DONE]`). `replay_responses` tells a Responses recording from a Chat
Completions one by its events and returns the replay document and the events.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from typing import Any, NamedTuple

from pydantic_core import from_json

from ..._events import event_to_dict
from ..._exceptions import StreamError
from .._sse import SSEDecoder
from ._assemble import ResponsesAssembler
from ._output import AssembledResponsesOutput, reduce_output

__all__ = ["ResponsesReplay", "is_responses_stream", "read_responses", "replay_responses"]


class ResponsesReplay(NamedTuple):
    """What replaying a Responses recording gives."""

    document: dict[str, Any]
    """`{"status", "output", "usage", "errors"}`, as `reduce_output` makes it."""
    events: list[dict[str, Any]]
    """The agentstream events, as `event_to_dict` makes them (for `--events`)."""
    output: AssembledResponsesOutput


def _payload(data: str, where: str) -> dict[str, Any]:
    try:
        payload = from_json(data)
    except ValueError:
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise StreamError(f"{where}: not JSON ({exc})", body=data[:200]) from None
    if not isinstance(payload, dict):
        raise StreamError(f"{where}: not a JSON object", body=data[:200])
    return payload


def read_responses(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The event payloads of a recording, JSON lines or a raw SSE body.

    The text is read as SSE when any line starts with `data:`, `event:` or `:`. An
    SSE payload without a `type` takes its `event:` name. Reading stops at `[DONE]`.
    Raises `StreamError` for a payload that is not a JSON object.
    """
    lines = list(lines)
    if any(line.startswith(("data:", "event:", ":")) for line in lines):
        decoder = SSEDecoder()
        body = "\n".join(line.rstrip("\r\n") for line in lines) + "\n\n"
        payloads = []
        for number, event in enumerate([*decoder.feed(body.encode()), *decoder.flush()], 1):
            if event.data.strip() == "[DONE]":
                break
            payload = _payload(event.data, f"event {number}")
            if "type" not in payload and event.event:
                payload["type"] = event.event
            payloads.append(payload)
        return payloads
    payloads = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        if line == "[DONE]":
            break
        payloads.append(_payload(line, f"line {number}"))
    return payloads


def is_responses_stream(payloads: Iterable[dict[str, Any]]) -> bool:
    """Whether payloads are Responses API events (`type: "response.*"`), not chat chunks."""
    found = False
    for payload in payloads:
        if "choices" in payload:
            return False
        kind = payload.get("type")
        if isinstance(kind, str) and kind.startswith("response."):
            found = True
    return found


def replay_responses(lines: Iterable[str]) -> ResponsesReplay | None:
    """Replay a recording through a fresh `ResponsesAssembler`; None if it is not one.

    Made-up call ids are numbered (`call_replay_1`, ...) so that a replay prints the
    same thing every time. Raises `StreamError` for a file that is not a stream.
    """
    payloads = read_responses(lines)
    if not is_responses_stream(payloads):
        return None
    counter = itertools.count(1)
    assembler = ResponsesAssembler(new_id=lambda: f"call_replay_{next(counter)}")
    events = [event_to_dict(event) for payload in payloads for event in assembler.feed(payload)]
    output = assembler.finish()
    return ResponsesReplay(reduce_output(output), events, output)
