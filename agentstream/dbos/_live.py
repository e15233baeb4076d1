"""A model response's pieces in the event log while it streams, from inside its step.

The request step records the whole response, and the run assembles it only once it is
recorded; without more, a reader would see a step's text all at once when it ends. So
the step writes the pieces as they arrive (`LiveWriter`), numbered from where the run's
log had got to, and returns how many rows it wrote. That count is recorded with the
response, so a replay skips the same numbers, and the run leaves out the stream events
it makes from the recorded response (the log has them already).

A step that a crash cut left its pieces in the log. When DBOS runs the step again, it
finds them first and writes a `StepInterrupted` that withdraws them (then a new
`StepStarted`), as a broken stream is shown in any run; the rows stay, every reader
sees the same. Only the Chat Completions wire is streamed live; other requests are
written by the run as usual.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import anyio.to_thread

from agentstream import (
    StepInterrupted,
    StepStarted,
    StreamAssembler,
    TextDelta,
    ToolCallStarted,
)

from ._codec import RecordedError, decode, encode
from ._log import EventLog
from ._record import Coalescer

__all__ = ["LiveWriter", "is_live_request"]

_EVERY = 0.1  # seconds between writes of the pieces that have arrived
_FAR = 1 << 30  # rows past the start a cut attempt may have left (no real bound)


def is_live_request(method: str, url: str, body: bytes) -> bool:
    """Whether this request streams Chat Completions chunks (the wire written live)."""
    if method != "POST" or not url.rstrip("/").endswith("/chat/completions"):
        return False
    try:
        sent = json.loads(body)
    except ValueError:
        return False
    return isinstance(sent, dict) and sent.get("stream") is True


class LiveWriter:
    """Writes one response's stream events to the log from seq `seq` on."""

    def __init__(self, log: EventLog, workflow_id: str, seq: int, step: int, attempt: int) -> None:
        self._log = log
        self._workflow_id = workflow_id
        self._first = seq
        self._seq = seq
        self._step = step
        self._attempt = attempt
        self._assembler = StreamAssembler(step=step)
        self._pending = Coalescer()
        self._tail: list[bytes] = []  # the bytes of a line not ended yet

    @property
    def rows(self) -> int:
        """Rows written so far, a cut attempt's included."""
        return self._seq - self._first

    async def begin(self) -> None:
        """Withdraw what a cut attempt at this step left in the log, if it left anything."""
        left = await anyio.to_thread.run_sync(
            self._log.read_rows, self._workflow_id, self._first - 1, _FAR
        )
        if not left:
            return
        events = [decode(text) for _, text in left]
        self._seq = self._first + len(left)
        attempt = max([self._attempt, *(e.attempt for e in events if isinstance(e, StepStarted))])
        withdrawn = _after_last_restart(events)
        text = "".join(e.text for e in withdrawn if isinstance(e, TextDelta))
        calls = tuple(e.index for e in withdrawn if isinstance(e, ToolCallStarted))
        error = RecordedError("WorkerLost", "the worker streaming this step stopped")
        self._pending.add(StepInterrupted(self._step, attempt, error, text, "", calls, 0.0))
        self._pending.add(StepStarted(self._step, attempt + 1))
        await self._write()

    def feed(self, data: bytes) -> None:
        """Take bytes of the SSE body (`keep_writing` writes their pieces)."""
        if b"\n" in data:
            # Joined only at a line's end: a long line in many pieces stays linear.
            *lines, rest = (b"".join(self._tail) + data).split(b"\n")
            self._tail = [rest]
            for line in lines:
                self._line(line.strip())
        else:
            self._tail.append(data)

    async def keep_writing(self) -> None:
        """Write the pieces that have arrived every `_EVERY` seconds, until cancelled.

        On a clock rather than on arrival, so that the pieces before a stall are shown.
        """
        while True:
            await anyio.sleep(_EVERY)
            await self._write()

    async def finish(self) -> None:
        """Write what is left."""
        self._line(b"".join(self._tail).strip())
        self._tail = []
        await self._write()

    def _line(self, line: bytes) -> None:
        if not line.startswith(b"data:"):
            return
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return
        try:
            chunk = json.loads(payload)
            events = self._assembler.feed(chunk)
        except Exception:  # a bad chunk: the run reports it, from the record
            return
        for event in events:
            self._pending.add(event)

    async def _write(self) -> None:
        events = self._pending.take()
        if not events:
            return
        rows = [(self._seq + n, encode(event)) for n, event in enumerate(events)]
        self._seq += len(rows)
        await anyio.to_thread.run_sync(self._log.write_rows, self._workflow_id, rows)


def _after_last_restart(events: list[Any]) -> list[Any]:
    """The events after the last `StepStarted`: what the last cut attempt showed."""
    for n in range(len(events) - 1, -1, -1):
        if isinstance(events[n], StepStarted):
            return events[n + 1 :]
    return events
