"""The item state behind `ResponsesAssembler`: finding an event's item, and merging
whole items, parts and finished values into what the deltas built.

Every finished value (a `.done` event, `output_item.done`, the terminal response) is
the final word; what it adds to the deltas is sent on as one more delta event, so the
events always tell the whole text and arguments.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from ..._stream_events import (
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallDeltaTwin,
    ToolCallStarted,
)
from .._partial_call import PartialCall, drop_arguments, reparse_arguments
from ._items import Item, Part

__all__ = ["EVENT_CLASS", "ItemMerger"]

_new_object = object.__new__

EVENT_CLASS: dict[str, type[TextDelta | RefusalDelta | ReasoningDelta]] = {
    "output_text": TextDelta,
    "refusal": RefusalDelta,
    "reasoning_text": ReasoningDelta,
    "summary_text": ReasoningDelta,
}


class ItemMerger:
    """The output items of one reply, keyed by `output_index`, and how they are merged."""

    __slots__ = ("_by_id", "_items", "_last", "_max_arguments", "_next", "_partial", "_step")

    def __init__(self, step: int, partial_arguments: bool, max_argument_size: int | None) -> None:
        self._step = step
        self._partial = partial_arguments
        self._max_arguments = sys.maxsize if max_argument_size is None else max_argument_size
        self._items: dict[int, Item] = {}
        self._by_id: dict[str, Item] = {}
        self._last: Item | None = None
        self._next = 0  # the index for an item that came with none

    def _locate(self, event: Mapping[str, Any], kind: Any, item_id: Any = None) -> Item:
        """The item an event is about: by `output_index`; else by item id; else the
        latest item; a new one when none fits (a stream that started part-way)."""
        if item_id is None:
            item_id = event.get("item_id")
        if type(item_id) is not str or not item_id:
            item_id = None
        index = event.get("output_index")
        if type(index) is int:
            item = self._items.get(index)
        else:
            item = self._by_id.get(item_id) if item_id is not None else None
            if item is None and self._last is not None and kind in (None, self._last.kind):
                item = self._last
            index = self._next
        if item is None:
            item = self._items[index] = Item(index, kind if isinstance(kind, str) else "", item_id)
            if index >= self._next:
                self._next = index + 1
        if item_id is not None and item.id is None:
            item.id = item_id
        if item_id is not None and item_id not in self._by_id:
            self._by_id[item_id] = item
        self._last = item
        return item

    def _call(self, item: Item) -> PartialCall:
        call = item.call
        if call is None:
            call = item.call = PartialCall(item.index, 1 if self._partial else sys.maxsize)
        return call

    @staticmethod
    def _part(parts: dict[int, Part], index: int, kind: str) -> Part:
        part = parts.get(index)
        if part is None:
            part = parts[index] = Part(kind)
        return part

    def _settle(self, part: Part, text: str, events: list[StreamEvent]) -> None:
        """Make `text`, a finished value, the part's text; send on what it adds."""
        if not text:
            return  # an empty value never wipes out text that streamed
        so_far = part.text()
        if text == so_far:
            return
        part.pieces = [text]
        if text.startswith(so_far):
            events.append(EVENT_CLASS[part.kind](self._step, 0, text[len(so_far) :]))

    def _take_part(
        self,
        item: Item,
        parts: dict[int, Part],
        index: int,
        raw: Mapping[str, Any],
        events: list[StreamEvent],
    ) -> None:
        """A whole content or summary part (`added`, `done`, or inside a whole item)."""
        kind = raw.get("type")
        if type(kind) is not str or kind not in EVENT_CLASS:
            return
        part = self._part(parts, index, kind)
        text = raw.get("refusal" if kind == "refusal" else "text")
        if isinstance(text, str):
            self._settle(part, text, events)

    def _take_item(self, item: Item, raw: Mapping[str, Any], events: list[StreamEvent]) -> None:
        """A whole item (`output_item.added`/`.done`, or in the terminal response)."""
        item.raw = raw
        kind = raw.get("type")
        if isinstance(kind, str):
            item.kind = kind
        item_id = raw.get("id")
        if isinstance(item_id, str) and item_id:
            if item.id is None:
                item.id = item_id
            if item_id not in self._by_id:
                self._by_id[item_id] = item
        if kind == "message" or kind == "reasoning":
            for key, parts in (("content", item.parts), ("summary", item.summary)):
                listed = raw.get(key)
                if type(listed) is list:
                    for index, part in enumerate(listed):
                        if isinstance(part, Mapping):
                            self._take_part(item, parts, index, part, events)
            encrypted = raw.get("encrypted_content")
            if isinstance(encrypted, str):
                item.encrypted = encrypted  # it changes as the item goes: the last one wins
        elif kind == "function_call":
            call = self._call(item)
            call_id = raw.get("call_id")
            if call.id is None and isinstance(call_id, str) and call_id:
                call.id = call_id
            name = raw.get("name")
            if call.name is None and isinstance(name, str) and name:
                call.name = name
            arguments = raw.get("arguments")
            if isinstance(arguments, str):
                self._settle_arguments(item, arguments, events)
            if not call.started:
                self._start(item, call, events)

    def _start(self, item: Item, call: PartialCall, events: list[StreamEvent]) -> None:
        """Announce a call once its name is known, with the arguments it has so far."""
        if call.name is None:
            return  # arguments before the name are sent on when the name comes
        call.started = True
        events.append(ToolCallStarted(self._step, 0, item.index, call.id, call.name))
        if call.pieces:
            if call.size >= call.parse_at:
                reparse_arguments(call)
            piece = call.arguments()
            events.append(
                ToolCallDelta(self._step, 0, item.index, call.id, call.name, piece, call.partial)
            )

    def _arguments_piece(self, item: Item, piece: str, events: list[StreamEvent]) -> None:
        call = self._call(item)
        if not piece:
            return
        if call.started:
            made = self._add_piece(call, piece)
            if made:
                events.append(made)
            return
        call.size += len(piece)
        if call.size > self._max_arguments:
            drop_arguments(call)
        elif not call.oversized:
            call.pieces.append(piece)

    def _settle_arguments(self, item: Item, arguments: str, events: list[StreamEvent]) -> None:
        """Make `arguments`, a finished value, the call's; send on what they add."""
        call = self._call(item)
        if call.oversized or not arguments:
            return
        so_far = call.arguments()
        if arguments == so_far:
            return
        if call.started and arguments.startswith(so_far):
            made = self._add_piece(call, arguments[len(so_far) :])
            if made:
                events.append(made)
            return
        call.size = len(arguments)
        if call.size > self._max_arguments:
            drop_arguments(call)
            return
        call.pieces = [arguments]
        if self._partial and call.started:
            reparse_arguments(call)

    def _add_piece(self, call: PartialCall, piece: str) -> ToolCallDelta | None:
        """A non-empty piece of arguments for a call that has started (so has a name)."""
        size = call.size = call.size + len(piece)
        if size > self._max_arguments:
            drop_arguments(call)
            return None
        call.pieces.append(piece)
        if size >= call.parse_at:
            reparse_arguments(call)
        # ToolCallDelta(...), built as its unfrozen twin: see `_assemble._add_piece`.
        event = _new_object(ToolCallDeltaTwin)
        event.step = self._step
        event.choice = 0
        event.index = call.position
        event.id = call.id
        event.name = call.name
        event.delta = piece
        event.partial = call.partial
        event.type = "tool_call_delta"
        event.__class__ = ToolCallDelta
        return event  # type: ignore[no-any-return]
