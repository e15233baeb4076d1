"""A run's numbered frames, kept for reattaching, compacted as the run goes.

Every frame keeps its number (the SSE `id:` a client sends back as `Last-Event-ID`), but
what is kept behind the numbers shrinks:

- Coalesced frames (a tool's progress): only the latest frame of a key is kept; the
  older ones become holes, which readers skip. A reader ends with the same state.
- Pieces (text, reasoning, argument deltas): once their part is settled (the part or
  the step ended), the part's frames become one frame, at the number of its last piece,
  holding the joined text. A reader that had already been sent some of the pieces gets
  only the rest, so nothing is shown twice nor lost.

So a run with 50,000 progress reports keeps one report per tool (and a machine word
per number), and a long answer keeps its text once, not once per token.
"""

from __future__ import annotations

import json
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as default
from typing import Any

__all__ = ["Replay"]


def _compact(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


Field = str | tuple[str, ...]
"""Where a frame's piece of text is: a key, or the keys down to it in nested objects."""


def _get(chunk: Mapping[str, Any], field: Field) -> Any:
    for key in (field,) if isinstance(field, str) else field:
        chunk = chunk[key]
    return chunk


def _put(template: Mapping[str, Any], field: Field, text: str) -> dict[str, Any]:
    """A copy of `template` with `text` at `field` (the objects on the way copied)."""
    keys = (field,) if isinstance(field, str) else field
    if len(keys) == 1:
        return {**template, keys[0]: text}
    return {**template, keys[0]: _put(template[keys[0]], keys[1:], text)}


@dataclass(slots=True)
class _Open:
    """A part whose pieces are still arriving."""

    template: dict[str, Any]
    field: Field
    numbers: list[int] = default(default_factory=list)
    pieces: list[str] = default(default_factory=list)


@dataclass(slots=True)
class _Merged:
    """A settled part: its frames' numbers, where each piece starts, the joined text."""

    template: dict[str, Any]
    field: Field
    numbers: array[int]
    offsets: array[int]
    text: str

    def after(self, sent: int) -> str | None:
        """The frame for a reader that has had the frames up to `sent` (None: nothing)."""
        start = bisect_right(self.numbers, sent)
        if start >= len(self.numbers):
            return None
        return _compact(_put(self.template, self.field, self.text[self.offsets[start] :]))


class Replay:
    """Numbered frames (SSE `data:` payloads) with holes where frames were compacted."""

    def __init__(self) -> None:
        self._items: list[str | None] = []
        self._latest: dict[str, int] = {}  # coalescing key -> number of its kept frame
        self._open: dict[str, _Open] = {}  # part key -> its pieces so far
        self._merged: dict[int, _Merged] = {}  # number of a settled part's frame -> it

    def __len__(self) -> int:
        return len(self._items)

    def add(self, data: str, coalesce: str | None = None) -> None:
        """Append a frame; with `coalesce`, it replaces the last frame of that key."""
        if coalesce is not None:
            older = self._latest.get(coalesce)
            if older is not None:
                self._items[older] = None
            self._latest[coalesce] = len(self._items)
        self._items.append(data)

    def add_piece(self, part: str, chunk: Mapping[str, Any], piece_field: Field) -> None:
        """Append a frame that is one piece (`chunk[piece_field]`) of the text of `part`."""
        piece = str(_get(chunk, piece_field))
        current = self._open.get(part)
        if current is None:
            current = self._open[part] = _Open(dict(chunk), piece_field)
        current.numbers.append(len(self._items))
        current.pieces.append(piece)
        self._items.append(_compact(chunk))

    def settle(self, part: str) -> None:
        """Join the frames of `part` into one, at the number of its last piece."""
        current = self._open.pop(part, None)
        if current is None or len(current.numbers) < 2:
            return
        offsets, position = array("Q"), 0
        for piece in current.pieces:
            offsets.append(position)
            position += len(piece)
        numbers = array("Q", current.numbers)
        text = "".join(current.pieces)
        for number in numbers[:-1]:
            self._items[number] = None
        last = numbers[-1]
        self._merged[last] = _Merged(current.template, current.field, numbers, offsets, text)
        self._items[last] = _compact(_put(current.template, current.field, text))

    def settle_all(self, prefix: str = "") -> None:
        """Settle every open part whose key starts with `prefix`."""
        for part in [key for key in self._open if key.startswith(prefix)]:
            self.settle(part)

    def read(self, sent: int) -> Iterator[tuple[int, str]]:
        """The frames numbered above `sent` that are kept, as (number, data)."""
        position = max(sent + 1, 0)
        while position < len(self._items):
            data = self._items[position]
            merged = self._merged.get(position)
            if merged is not None and merged.numbers[0] <= sent:
                data = merged.after(sent)  # the reader already has some of its pieces
            if data is not None:
                yield position, data
                sent = position
            position += 1
