"""Server-Sent Events decoding without I/O: bytes in, complete events out.

Only what Chat Completions streams use is kept: the `event` name and the `data`
payload. Comment lines (`: PROCESSING`), `id` and `retry` fields are skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any, NamedTuple

from pydantic_core import from_json

from .._exceptions import StreamError
from .._json import Hold, TooDeep, clean_text, loads, repair
from .._redact import MASK, clip

__all__ = ["SSEDecoder", "ServerSentEvent", "decode_chunk"]

_MASK = MASK.encode()
_make = tuple.__new__
"""Makes a `ServerSentEvent` without the Python-level `__new__` of a named tuple: one
Python call less per chunk (of some 20; see tests/test_cost_budget.py)."""


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

    `secret` is masked in every line before it is decoded, so nothing made from the
    stream can show it, whole or in part. `max_event_size` bounds, in bytes, an event
    and the unfinished line kept between reads: past it `StreamError` is raised before
    more is buffered. Bytes are copied a bounded number of times whatever the reads' sizes.
    """

    __slots__ = (
        "_data",
        "_data_size",
        "_event",
        "_fresh",
        "_limit",
        "_pending",
        "_pending_cr",
        "_pending_size",
        "_secret",
    )

    def __init__(self, *, secret: str | None = None, max_event_size: int | None = None) -> None:
        self._pending: list[bytes] = []  # an unfinished line, as read
        self._pending_size = 0
        self._event = ""
        self._data: list[str] = []
        self._data_size = 0
        self._pending_cr = False
        self._secret = secret.encode() if secret else None
        self._limit = sys.maxsize if max_event_size is None else max_event_size
        self._fresh = True  # nothing kept between reads: no line, event or `\r` pending

    def feed(self, raw: bytes) -> list[ServerSentEvent]:
        """Decode `raw` and return the events it completes."""
        events = self._feed(raw)
        self._fresh = not (self._pending or self._data or self._event or self._pending_cr)
        return events

    def chunks(
        self, raw: bytes, held: dict[tuple[Any, ...], str]
    ) -> list[dict[str, Any] | None] | Iterator[dict[str, Any] | None]:
        """Decode `raw`: the chunk of each event it completes, as `decode_chunk` reads it
        (None for `[DONE]`), with `held` the stream's; a malformed one raises when reached.

        A read that is one whole event of one `data:` line (after an `event:` line or
        not), as servers write them, one chunk at a time, is read on a path of its own:
        no `ServerSentEvent`, no text, the JSON parsed from the bytes. It saves a third
        of reading a chunk, on most reads of a stream (see docs/speed.md). Anything
        else, or anything that path cannot parse, takes the general one.
        """
        if self._fresh and not held and raw.endswith(b"\n\n") and b"\r" not in raw:
            secret = self._secret
            if secret is not None and secret in raw:
                raw = raw.replace(secret, _MASK)
            start = 0
            if raw.startswith(b"data: "):
                start = 6
            elif raw.startswith(b"event: ") and not raw.startswith(b"event: error\n"):
                cut = raw.find(b"\n", 7) + 1
                if raw.startswith(b"data: ", cut):
                    start = cut + 6
            end = len(raw) - 2
            if start and raw.find(b"\n", start) == end and len(raw) <= self._limit:
                if raw.startswith(b"[DONE]", start):
                    return [None]
                try:
                    chunk = from_json(raw[start:end])
                except ValueError:
                    pass  # not UTF-8, a lone surrogate, not JSON: see `decode_chunk`
                else:
                    if type(chunk) is dict:
                        return [chunk]
        events = self.feed(raw)
        return (decode_chunk(event, held) for event in events) if events else []

    def _feed(self, raw: bytes) -> list[ServerSentEvent]:
        if self._pending_cr and raw.startswith(b"\n"):
            raw = raw[1:]  # the \n of a \r\n pair split across reads
        self._pending_cr = raw.endswith(b"\r")
        if b"\r" in raw:
            raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = raw.rfind(b"\n")
        if end < 0:
            # No line ends here: keep the piece without copying what came before, so a
            # line read in many pieces is joined once, when it ends.
            if raw:
                self._pending.append(raw)
                self._pending_size += len(raw)
                self._check(self._pending_size + self._data_size)
            return []
        if self._pending:
            self._pending.append(raw)
            end += self._pending_size
            raw = b"".join(self._pending)
            self._pending = []
        rest = raw[end + 1 :]
        buffer = raw[: end + 1] if rest else raw
        if rest:
            self._pending.append(rest)
        self._pending_size = len(rest)
        if len(buffer) + self._data_size > self._limit:
            self._check_lines(buffer)
        secret = self._secret
        if secret is not None and secret in buffer:
            buffer = buffer.replace(secret, _MASK)
        events: list[ServerSentEvent] = []
        if not self._data and not self._event:
            # Fast path: whole events, each usually one `data:` line. A block between
            # blank lines holds no UTF-8 character cut in two (no byte of one is \n).
            cut = buffer.rfind(b"\n\n")
            if cut >= 0:
                for block in buffer[:cut].split(b"\n\n"):
                    name, data = b"", block
                    if block.startswith(b"event:") and block.count(b"\n") == 1:
                        # `event: name` then one `data:` line (the Responses API's events)
                        name, _, data = block.partition(b"\n")
                        name = name[7:] if name.startswith(b"event: ") else name[6:]
                    if data.startswith(b"data:") and b"\n" not in data:
                        data = data[6:] if data.startswith(b"data: ") else data[5:]
                        text = data.decode("utf-8", "replace")
                        events.append(
                            _make(ServerSentEvent, (name.decode("utf-8", "replace"), text))
                        )
                    else:
                        for line in block.decode("utf-8", "replace").split("\n"):
                            self._line(line, events)
                        self._line("", events)
                buffer = buffer[cut + 2 :]
        for line in buffer[:-1].decode("utf-8", "replace").split("\n") if buffer else ():
            self._line(line, events)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of input: decode what is left, dispatching an unterminated event."""
        events: list[ServerSentEvent] = []
        if self._pending:
            line = b"".join(self._pending)
            self._pending, self._pending_size = [], 0
            if self._secret is not None:
                line = line.replace(self._secret, _MASK)
            self._line(line.decode("utf-8", "replace"), events)
        self._line("", events)
        self._fresh = not self._pending_cr
        return events

    def _check(self, size: int) -> None:
        if size > self._limit:
            raise StreamError(
                f"the server sent an event of more than {self._limit} bytes; "
                "it was refused before being buffered whole"
            )

    def _check_lines(self, buffer: bytes) -> None:
        """Refuse a line, or the event it ends, that passes the limit (rarely needed)."""
        size = self._data_size
        for line in buffer.split(b"\n"):
            size = 0 if not line else size + len(line)
            self._check(size)

    def _line(self, line: str, events: list[ServerSentEvent]) -> None:
        if not line:
            if self._data:
                events.append(ServerSentEvent(self._event, "\n".join(self._data)))
            self._event = ""
            self._data = []
            self._data_size = 0
            return
        if line.startswith("data:"):
            # Fast path first: nearly every line of a stream is `data: {...}`.
            value = line[6:] if line.startswith("data: ") else line[5:]
        elif line[0] == ":":
            return
        else:
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "event":
                self._event = value
                return
            if name != "data":
                return
        self._data.append(value)
        self._data_size += len(value) + 1
        self._check(self._data_size + self._pending_size)


def decode_chunk(
    event: ServerSentEvent, held: dict[tuple[Any, ...], str] | None = None
) -> dict[str, Any] | None:
    """The chunk an event carries; None for the closing `[DONE]`.

    An `error` event, or any payload that is not a JSON object, is returned as an
    `{"error": ...}` chunk or raised as `StreamError`, so a broken stream is never
    mistaken for a finished one; so is JSON nested too deep to read (`_json.MAX_DEPTH`).
    JSON is read by pydantic-core (about twice as fast as `json.loads` on a chunk).

    Text is made safe to send on: a lone surrogate escape becomes U+FFFD. Given `held`
    (one dict per stream), the first half of a surrogate pair that ends a string is held
    back until the string at the same place in the next chunk, so a pair split across
    two chunks still becomes its character.
    """
    data = event.data
    if data.startswith("[DONE]"):
        return None
    try:
        chunk = from_json(data)
    except ValueError:
        chunk = _slow_loads(data, held)  # json's rules and messages, e.g. for lone surrogates
    else:
        if held:
            chunk = repair(chunk, _holder(held))  # a held half that found no partner
    if event.event == "error" and not (isinstance(chunk, dict) and "error" in chunk):
        chunk = {"error": chunk}
    if not isinstance(chunk, dict):
        raise StreamError(f"malformed chunk: not a JSON object: {clip(data)}", body=chunk)
    return chunk


def _slow_loads(data: str, held: dict[tuple[Any, ...], str] | None) -> Any:
    try:
        return loads(data, None if held is None else _holder(held))
    except TooDeep as exc:
        raise StreamError(f"malformed chunk: JSON {exc}: {clip(data)}", body=data) from None
    except ValueError as exc:
        raise StreamError(f"malformed chunk: not JSON ({exc}): {clip(data)}", body=data) from None


def _holder(held: dict[tuple[Any, ...], str]) -> Hold:
    def fix(text: str, path: tuple[Any, ...]) -> str:
        if held:
            text = held.pop(path, "") + text
        if text and "\ud800" <= text[-1] <= "\udbff":
            held[path] = text[-1]
            text = text[:-1]
        return clean_text(text)

    return fix
