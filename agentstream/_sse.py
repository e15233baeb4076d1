"""Server-Sent Events decoding without I/O: bytes in, complete events out.

Only what Chat Completions streams use is kept: the `event` name and the `data`
payload. Comment lines (`: PROCESSING`), `id` and `retry` fields are skipped.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from pydantic_core import from_json

from ._exceptions import StreamError

__all__ = ["SSEDecoder", "ServerSentEvent", "decode_chunk"]


class ServerSentEvent(NamedTuple):
    """One dispatched event: its name ("" when none was given) and its data.

    A named tuple rather than a frozen dataclass: one is made for every chunk, and
    a tuple costs a third as much to make.
    """

    event: str
    data: str


class SSEDecoder:
    """Incremental decoder: `feed(bytes)` returns the events completed so far.

    Handles `\\n`, `\\r\\n` and `\\r` line ends, lines and UTF-8 characters split across
    reads, multi-line `data`, and a final event left without its blank line (`flush()`).
    """

    __slots__ = ("_buffer", "_data", "_event", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []
        self._pending_cr = False

    def feed(self, raw: bytes) -> list[ServerSentEvent]:
        """Decode `raw` and return the events it completes."""
        if self._pending_cr and raw.startswith(b"\n"):
            raw = raw[1:]  # the \n of a \r\n pair split across reads
        self._pending_cr = raw.endswith(b"\r")
        if b"\r" in raw:
            raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer + raw if self._buffer else raw
        events: list[ServerSentEvent] = []
        if not self._data and not self._event:
            # Fast path: whole events, each usually one `data:` line. A block between
            # blank lines holds no UTF-8 character cut in two (no byte of one is \n).
            end = buffer.rfind(b"\n\n")
            if end >= 0:
                for block in buffer[:end].split(b"\n\n"):
                    if block.startswith(b"data:") and b"\n" not in block:
                        data = block[6:] if block.startswith(b"data: ") else block[5:]
                        events.append(ServerSentEvent("", data.decode("utf-8", "replace")))
                    else:
                        for line in block.decode("utf-8", "replace").split("\n"):
                            self._line(line, events)
                        self._line("", events)
                buffer = buffer[end + 2 :]
        end = buffer.rfind(b"\n")
        if end < 0:
            self._buffer = buffer
            return events
        self._buffer = buffer[end + 1 :]
        for line in buffer[:end].decode("utf-8", "replace").split("\n"):
            self._line(line, events)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of input: decode what is left, dispatching an unterminated event."""
        events: list[ServerSentEvent] = []
        if self._buffer:
            self._line(self._buffer.decode("utf-8", "replace"), events)
            self._buffer = b""
        self._line("", events)
        return events

    def _line(self, line: str, events: list[ServerSentEvent]) -> None:
        if not line:
            if self._data:
                events.append(ServerSentEvent(self._event, "\n".join(self._data)))
            self._event = ""
            self._data = []
            return
        if line.startswith("data:"):
            # Fast path first: nearly every line of a stream is `data: {...}`.
            self._data.append(line[6:] if line.startswith("data: ") else line[5:])
            return
        if line[0] == ":":
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)


def decode_chunk(event: ServerSentEvent) -> dict[str, Any] | None:
    """The chunk an event carries; None for the closing `[DONE]`.

    An `error` event, or any payload that is not a JSON object, is returned as an
    `{"error": ...}` chunk or raised as `StreamError`, so a broken stream is never
    mistaken for a finished one. JSON is read by pydantic-core (about twice as fast as
    `json.loads` on a chunk); what it refuses is read again by `json` for its verdict.
    """
    data = event.data
    if data.startswith("[DONE]"):
        return None
    try:
        chunk = from_json(data)
    except ValueError:
        chunk = _strict_loads(data)  # json's rules and messages, e.g. for lone surrogates
    if event.event == "error" and not (isinstance(chunk, dict) and "error" in chunk):
        chunk = {"error": chunk}
    if not isinstance(chunk, dict):
        raise StreamError(f"malformed chunk: not a JSON object: {data[:200]}", body=chunk)
    return chunk


def _strict_loads(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        shown = data if len(data) <= 200 else data[:200] + "..."
        raise StreamError(f"malformed chunk: not JSON ({exc}): {shown}", body=data) from None
