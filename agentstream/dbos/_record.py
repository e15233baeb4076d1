"""The run's side of the event log: numbering its events and writing them as it goes.

`Recorder` numbers the events the workflow's run makes (the same numbers on every
replay, since the run makes the same events from the record) and writes them, deltas
coalesced by `Coalescer`. While a model request streams, its step writes the pieces
itself (`_live`); the recorder then skips the rows the step reports and leaves out the
stream events the run makes of that response.
"""

from __future__ import annotations

import dataclasses

import anyio
import anyio.to_thread

from agentstream import (
    Event,
    OutputDelta,
    ReasoningDelta,
    RefusalDelta,
    RunFailed,
    RunFinished,
    ServerError,
    StepStarted,
    TextDelta,
    ToolCallDelta,
    ToolCallStarted,
    ToolProgress,
)

from ._codec import encode
from ._log import EventLog

__all__ = ["Coalescer", "Recorder"]

_PENDING = 256  # pieces held before they are written anyway
_DELTAS = (TextDelta, ReasoningDelta, RefusalDelta, ToolCallDelta, OutputDelta)
_STREAM = (TextDelta, ReasoningDelta, RefusalDelta, ToolCallStarted, ToolCallDelta, ServerError)


class Coalescer:
    """Pending events, consecutive pieces of one text, reasoning, refusal or call as one.

    Each pending event keeps the pieces merged into it, joined once when taken
    (concatenating piece by piece would be quadratic).
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Event, list[str]]] = []
        self.pieces = 0
        """Events taken in since the last `take()`."""

    def add(self, event: Event) -> None:
        """Hold one more event, merged into the last one if it continues it."""
        if self._pending and _same_piece(self._pending[-1][0], event):
            pieces = self._pending[-1][1]
            pieces.append(_piece(event))
            if isinstance(event, (ToolCallDelta, OutputDelta)):  # the latest parse wins
                self._pending[-1] = (event, pieces)
        else:
            self._pending.append((event, [_piece(event)]))
        self.pieces += 1

    def take(self) -> list[Event]:
        """The pending events, merged; none are pending afterwards."""
        events = [_joined(event, pieces) for event, pieces in self._pending]
        self._pending = []
        self.pieces = 0
        return events


class Recorder:
    """Numbers a run's events and writes them to the log, coalescing the deltas.

    Deltas are written with the next other event, fewer rows for the same text.
    `ToolProgress` is left out: it depends on timing, and would shift the numbers
    that a replay must give again.
    """

    def __init__(self, log: EventLog, workflow_id: str) -> None:
        self.log = log
        self.workflow_id = workflow_id
        self._pending = Coalescer()
        self._seq = 0
        self._step = 0
        self._attempt = 1
        self._streamed: int | None = None  # the step whose pieces its request step wrote
        self.ended = False

    async def add(self, event: Event) -> None:
        """Take one event of the run; write what is pending unless it is a delta."""
        if isinstance(event, ToolProgress):
            return
        if isinstance(event, StepStarted):
            self._step, self._attempt, self._streamed = event.step, event.attempt, None
        elif isinstance(event, _STREAM) and event.step == self._streamed:
            return  # the request step wrote these pieces as they came
        if isinstance(event, (RunFinished, RunFailed)):
            self.ended = True
        self._pending.add(event)
        if not isinstance(event, _DELTAS) or self._pending.pieces >= _PENDING:
            await self.flush()

    async def flush(self) -> None:
        """Write the pending events."""
        events = self._pending.take()
        if not events:
            return
        rows = [(self._seq + n, encode(event)) for n, event in enumerate(events)]
        self._seq += len(rows)
        await anyio.to_thread.run_sync(self.log.write_rows, self.workflow_id, rows)

    async def live_start(self) -> tuple[str, int, int, int]:
        """Where a request step writes its pieces: (workflow id, seq, step, attempt)."""
        await self.flush()
        return self.workflow_id, self._seq, self._step, self._attempt

    def streamed(self, rows: int) -> None:
        """The request step wrote `rows` rows (-1: it wrote nothing, the run writes all)."""
        if rows >= 0:
            self._seq += rows
            self._streamed = self._step


def _same_piece(last: Event, event: Event) -> bool:
    """Whether `event` continues `last` (the same text, reasoning, refusal or call)."""
    if type(last) is not type(event) or not isinstance(event, _DELTAS):
        return False
    if isinstance(event, OutputDelta):
        assert isinstance(last, OutputDelta)
        return last.step == event.step
    assert isinstance(last, (TextDelta, ReasoningDelta, RefusalDelta, ToolCallDelta))
    if (last.step, last.choice) != (event.step, event.choice):
        return False
    return not isinstance(event, ToolCallDelta) or getattr(last, "index", None) == event.index


def _piece(event: Event) -> str:
    if isinstance(event, (TextDelta, ReasoningDelta, RefusalDelta)):
        return event.text
    if isinstance(event, ToolCallDelta):
        return event.delta
    return ""


def _joined(event: Event, pieces: list[str]) -> Event:
    """`event` carrying all its merged pieces (the last event of a run of deltas)."""
    if len(pieces) == 1:
        return event
    if isinstance(event, (TextDelta, ReasoningDelta, RefusalDelta)):
        return type(event)(event.step, event.choice, "".join(pieces))
    if isinstance(event, ToolCallDelta):
        return dataclasses.replace(event, delta="".join(pieces))
    return event  # an OutputDelta: the latest parse holds all the earlier ones did
