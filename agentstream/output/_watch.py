"""Following a typed answer as it streams: partial JSON at amortised linear cost (no I/O).

The schedule is the one the assembler uses for tool arguments: below `SMALL_JSON`
characters the text is re-parsed on every piece, above it only once it has grown by
1/`REPARSE_FRACTION` of its size since the last parse, so the parsing work over a whole
answer is linear in its length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic_core import from_json

from .._events import OutputDelta, StreamEvent, TextDelta, ToolCallDelta
from ._spec import FINAL_TOOL, OutputSpec

__all__ = ["REPARSE_FRACTION", "SMALL_JSON", "OutputWatch", "next_parse_at"]

SMALL_JSON = 64
REPARSE_FRACTION = 8
_NEVER = 1 << 62


def next_parse_at(size: int) -> int:
    """The size at which JSON text of `size` characters, just parsed, is parsed again."""
    return size + 1 if size < SMALL_JSON else size + size // REPARSE_FRACTION


class OutputWatch:
    """The partial value of one attempt's typed answer, from the events of its stream.

    `feed(events)` takes the assembler's events and returns the `OutputDelta`s they
    lead to; `finish()` the last one, once the stream has ended whole. The answer is
    the text of choice 0 (`tool=False`) or the arguments of its final-answer call.
    In the tool mode the assembler's own partial parse of the arguments is used when
    it made one, so nothing is parsed twice.
    """

    __slots__ = (
        "_completed",
        "_index",
        "_parse_at",
        "_partial",
        "_pieces",
        "_seen",
        "_size",
        "_spec",
        "_step",
        "_tool",
        "_value",
    )

    def __init__(self, spec: OutputSpec, step: int, *, tool: bool) -> None:
        self._spec = spec
        self._step = step
        self._tool = tool
        self._index: int | None = None  # the final call followed (the first one)
        self._pieces: list[str] = []
        self._size = 0
        self._parse_at = 1
        self._partial: Any = None
        self._value: Any = None
        self._seen: set[Any] = set()
        self._completed: tuple[str | int, ...] = ()

    @property
    def completed(self) -> tuple[str | int, ...]:
        """The entries complete and valid so far."""
        return self._completed

    def feed(self, events: list[StreamEvent]) -> Sequence[OutputDelta]:
        """The partial values these events lead to (often none)."""
        if self._tool:
            return self._feed_tool(events)
        out: list[OutputDelta] | tuple[()] = ()
        for event in events:
            if type(event) is TextDelta and not event.choice:
                text = event.text
                self._pieces.append(text)
                self._size += len(text)
                if self._size >= self._parse_at:
                    if not out:
                        out = []
                    self._parse(out)
        return out

    def _feed_tool(self, events: list[StreamEvent]) -> list[OutputDelta]:
        out: list[OutputDelta] = []
        for event in events:
            if type(event) is not ToolCallDelta or event.choice or event.name != FINAL_TOOL:
                continue
            if self._index is None:
                self._index = event.index
            elif event.index != self._index:
                continue
            self._pieces.append(event.delta)
            self._size += len(event.delta)
            if event.partial is None:
                self._parse(out)
            elif event.partial is not self._partial:
                self._update(event.partial, out, final=False)  # the assembler's parse
        return out

    def finish(self) -> list[OutputDelta]:
        """The last partial value: every entry of a whole answer counts as complete."""
        text = "".join(self._pieces)
        try:
            whole = from_json(text)
        except ValueError:
            return []
        out: list[OutputDelta] = []
        self._update(whole, out, final=True)
        return out

    def _parse(self, out: list[OutputDelta]) -> None:
        size = self._size
        if size < self._parse_at:
            return
        text = "".join(self._pieces)
        self._pieces = [text]  # keep the join for next time
        try:
            partial = from_json(text, allow_partial="trailing-strings")
        except ValueError:
            # Not JSON so far: it will not become JSON later. Blanks wait on the growing
            # schedule, as they would cost quadratic work re-parsed on every piece.
            self._parse_at = next_parse_at(size) if not text.strip() else _NEVER
            return
        self._parse_at = next_parse_at(size)
        self._update(partial, out, final=False)

    def _update(self, partial: Any, out: list[OutputDelta], *, final: bool) -> None:
        self._partial = partial
        value: Any = self._spec.unwrap(partial) if isinstance(partial, dict) else None
        if isinstance(value, dict):
            entries = list(value)
            container: type = dict
        elif isinstance(value, list):
            entries = list(range(len(value)))
            container = list
        else:
            entries = []
            container = object
        done = entries if final else entries[:-1]  # the last one may still grow
        new = [entry for entry in done if entry not in self._seen]
        if new:
            self._seen.update(new)
            bad = self._spec.invalid_entries({entry: value[entry] for entry in new}, container)
            self._completed += tuple(entry for entry in new if entry not in bad)
        elif value == self._value:
            return  # parsed again, but nothing to show (a piece inside a string, say)
        self._value = value
        out.append(OutputDelta(self._step, value, self._completed))
