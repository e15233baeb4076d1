"""The state of each output item of a Responses stream, and the final items made from it.

`ResponsesAssembler` (in `_assemble`) keeps one `Item` per `output_index`; `build_output`
turns them into the assembled output once the stream is over (or at any point before).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._message import AssembledToolCall
from .._partial_call import PartialCall
from ._output import (
    AssembledReasoning,
    AssembledResponsesOutput,
    ResponseFailure,
    part_texts,
)

__all__ = ["Item", "Part", "build_output"]


class Part:
    """One text part of an item: a message's `output_text` or `refusal`, a reasoning
    item's `reasoning_text` or `summary_text`. Its pieces join to its text so far."""

    __slots__ = ("annotations", "kind", "pieces")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.pieces: list[str] = []
        self.annotations: list[Any] = []

    def text(self) -> str:
        pieces = self.pieces
        if len(pieces) == 1:
            return pieces[0]
        text = "".join(pieces)
        self.pieces = [text]  # keep the join for next time
        return text


class Item:
    """One output item being assembled, keyed by its `output_index`."""

    __slots__ = (
        "call",
        "closed",
        "cut",
        "encrypted",
        "generated",
        "id",
        "index",
        "kind",
        "parts",
        "raw",
        "summary",
        "terminal",
    )

    def __init__(self, index: int, kind: str, item_id: str | None) -> None:
        self.index = index
        self.kind = kind
        self.id = item_id
        self.raw: Mapping[str, Any] | None = None
        """The item as the server last sent it whole (added, done, terminal)."""
        self.terminal = False  # the terminal response listed it
        self.closed = False  # its arguments `.done` or its `output_item.done` came
        self.cut = False  # the server said it is incomplete
        self.parts: dict[int, Part] = {}  # by content_index
        self.summary: dict[int, Part] = {}  # by summary_index
        self.call: PartialCall | None = None
        self.generated = False  # the call id was made up
        self.encrypted: str | None = None


def _texts(parts: dict[int, Part], key: str) -> list[dict[str, Any]]:
    built = []
    for _, part in sorted(parts.items()):
        entry: dict[str, Any] = {"type": part.kind, key: part.text()}
        if part.kind == "output_text":
            entry["annotations"] = list(part.annotations)
        built.append(entry)
    return built


def _listed(raw: Mapping[str, Any], key: str) -> bool:
    """Whether `raw[key]` is a non-empty list: then it is the final word on those parts."""
    value = raw.get(key)
    return type(value) is list and bool(value)


def final_item(item: Item) -> Mapping[str, Any]:
    """The item as it stands: the server's own dict where it has one whole, with what
    only the stream told (text never listed, the last `encrypted_content`, arguments
    that came only as deltas) filled in; else one rebuilt from the deltas."""
    raw = item.raw if item.raw is not None else {"type": item.kind}
    changes: dict[str, Any] = {}
    if item.id is not None and not isinstance(raw.get("id"), str):
        changes["id"] = item.id
    kind = raw.get("type")
    if kind == "message":
        if not _listed(raw, "content") and item.parts:
            changes["content"] = [_text_entry(part) for _, part in sorted(item.parts.items())]
        if "role" not in raw:
            changes["role"] = "assistant"
    elif kind == "reasoning":
        if not _listed(raw, "summary") and (item.summary or "summary" not in raw):
            changes["summary"] = _texts(item.summary, "text")
        if not _listed(raw, "content") and item.parts:
            changes["content"] = _texts(item.parts, "text")
        if item.encrypted is not None and raw.get("encrypted_content") != item.encrypted:
            changes["encrypted_content"] = item.encrypted
    elif kind == "function_call" and item.call is not None:
        call = item.call
        arguments = call.arguments()
        if not call.oversized and raw.get("arguments") != arguments:
            changes["arguments"] = arguments
        if not isinstance(raw.get("call_id"), str) and call.id is not None:
            changes["call_id"] = call.id
        if not isinstance(raw.get("name"), str) and call.name is not None:
            changes["name"] = call.name
    return {**raw, **changes} if changes else raw


def _text_entry(part: Part) -> dict[str, Any]:
    if part.kind == "refusal":
        return {"type": "refusal", "refusal": part.text()}
    return {"type": "output_text", "text": part.text(), "annotations": list(part.annotations)}


def _call(item: Item, raw: Mapping[str, Any], new_id: Callable[[], str]) -> AssembledToolCall:
    call = item.call
    call_id = call.id if call is not None else None
    if call_id is None:
        call_id = raw.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        if call is None:
            item.call = call = PartialCall(item.index, 1 << 62)
        call.id = call_id = new_id()  # kept, so that a second finish() says the same
        item.generated = True
    name = call.name if call is not None else None
    if name is None and isinstance(raw.get("name"), str) and raw["name"]:
        name = raw["name"]
    arguments = raw.get("arguments")
    oversized = None
    if call is not None and call.oversized:
        arguments, oversized = "", call.size
    if not isinstance(arguments, str) or not arguments.strip():
        arguments = "{}"  # a tool without parameters, or arguments dropped
    return AssembledToolCall(item.index, call_id, name, arguments, item.generated, oversized)


def build_output(
    items: dict[int, Item],
    *,
    new_id: Callable[[], str],
    status: str | None,
    incomplete_reason: str | None,
    ended: bool,
    **rest: Any,
) -> AssembledResponsesOutput:
    """The assembled output of the items so far. `rest` are the response-level fields."""
    finals: list[Mapping[str, Any]] = []
    texts: list[str] = []
    refusals: list[str] = []
    message = False
    reasoning: list[AssembledReasoning] = []
    calls: list[AssembledToolCall] = []
    cut: list[int] = []
    completed = ended and status == "completed"
    for index, item in sorted(items.items()):
        raw = final_item(item)
        finals.append(raw)
        kind = raw.get("type")
        if kind == "message":
            message = True
            texts.extend(part_texts(raw.get("content"), "output_text", "text"))
            refusals.extend(part_texts(raw.get("content"), "refusal", "refusal"))
        elif kind == "function_call":
            calls.append(_call(item, raw, new_id))
            # Whole: finished by an event, or listed by a completed response, or listed
            # as completed by an incomplete one (calls from a `program` item stay
            # `in_progress` even when completed, so status alone never cuts a call).
            whole = item.closed or (
                item.terminal and (completed or raw.get("status") == "completed")
            )
            if item.cut or not whole:
                cut.append(index)
        elif kind == "reasoning":
            raw_text = part_texts(raw.get("content"), "reasoning_text", "text")
            encrypted = raw.get("encrypted_content")
            reasoning.append(
                AssembledReasoning(
                    index,
                    raw.get("id") if isinstance(raw.get("id"), str) else item.id,
                    tuple(part_texts(raw.get("summary"), "summary_text", "text")),
                    "".join(raw_text) if raw_text else None,
                    encrypted if isinstance(encrypted, str) else None,
                )
            )
    failure: ResponseFailure | None = rest.pop("failure")
    return AssembledResponsesOutput(
        status=status,
        incomplete_reason=incomplete_reason,
        text="".join(texts) if message else None,
        refusal="".join(refusals) if refusals else None,
        reasoning=tuple(reasoning),
        tool_calls=tuple(calls),
        cut_calls=tuple(cut),
        items=tuple(finals),
        failure=failure,
        ended=ended,
        **rest,
    )
