"""Replaying a recorded stream through the assembler: `python -m agentstream replay FILE`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from .._events import event_to_dict
from .._exceptions import SetupError, StreamError
from .._json import loads
from ..wire._message import AssembledResponse
from ..wire._sse import SSEDecoder, decode_chunk
from ..wire.chat._assemble import StreamAssembler
from ..wire.responses._replay import ResponsesReplay, replay_responses

__all__ = ["read_recording", "replay", "response_to_dict"]


def read_recording(text: str) -> Iterator[dict[str, Any]]:
    """The chunks of a recording: JSON lines of chunks, or a raw SSE body.

    A file is read as SSE when any line starts with `data:`, `event:` or `:`.
    Raises `StreamError` for a payload that is not a JSON object.
    """
    lines = text.splitlines()
    if any(line.startswith(("data:", "event:", ":")) for line in lines):
        decoder = SSEDecoder()
        for event in [*decoder.feed(text.encode()), *decoder.flush()]:
            chunk = decode_chunk(event)
            if chunk is None:
                return
            yield chunk
        return
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line == "[DONE]":
            continue
        try:
            chunk = loads(line)
        except ValueError as exc:  # also JSON nested too deep to read (`_json.TooDeep`)
            raise StreamError(f"line {number}: not JSON ({exc})") from None
        if not isinstance(chunk, dict):
            raise StreamError(f"line {number}: not a JSON object")
        yield chunk


def response_to_dict(response: AssembledResponse) -> dict[str, Any]:
    """The replay document: choices with their messages, usage, errors; absent parts left out."""
    choices = []
    for choice in response.choices:
        message = choice.message
        data: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            data["tool_calls"] = [call.to_dict() for call in message.tool_calls]
        if message.refusal is not None:
            data["refusal"] = message.refusal
        if message.reasoning is not None:
            data["reasoning"] = message.reasoning
        choices.append(
            {"index": choice.index, "finish_reason": choice.finish_reason, "message": data}
        )
    document: dict[str, Any] = {"choices": choices}
    if response.usage is not None:
        document["usage"] = dict(response.usage)
    if response.errors:
        document["errors"] = list(response.errors)
    return document


def replay(
    path: str | Path, out: TextIO, *, events: bool = False
) -> AssembledResponse | ResponsesReplay:
    """Feed a recording to a fresh assembler and print the result (or every event) to `out`.

    A Responses API recording (told by its `response.*` events) goes through the
    Responses assembler and prints `{"status", "output", "usage", "errors"}`; any other
    through the Chat Completions one. Raises `SetupError` when the file cannot be read
    and `StreamError` when it is not a stream.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"cannot read {path}: {exc}") from None
    try:
        responses = replay_responses(text.splitlines())
    except StreamError:
        responses = None  # not readable as Responses events: the chat reader says why
    if responses is not None:
        if events:
            for payload in responses.events:
                out.write(json.dumps(payload, ensure_ascii=False) + "\n")
        else:
            out.write(json.dumps(responses.document, indent=2, ensure_ascii=False) + "\n")
        return responses
    counter = iter(range(1, 1 << 30))
    # Made-up ids are numbered, so that replaying a file twice prints the same thing.
    assembler = StreamAssembler(new_id=lambda: f"call_replay_{next(counter)}")
    for chunk in read_recording(text):
        for event in assembler.feed(chunk):
            if events:
                out.write(json.dumps(event_to_dict(event), ensure_ascii=False) + "\n")
    response = assembler.finish()
    if not events:
        out.write(json.dumps(response_to_dict(response), indent=2, ensure_ascii=False) + "\n")
    return response
