"""An agent tool's inner run as UI parts: nested cards that live through a reload.

The inner run's events reach the encoder as `SubRunEvent`s. Its text streams live in
transient `data-agentstream` parts (kind `sub_run`, each naming the stretch of text it
belongs to); each stretch, once it ends (an inner call starts, an inner step ends, the
agent call ends), is sent again whole in one `data-subrun` part. Each inner tool call is
one `data-subrun` part too, sent again under the same id as it waits, runs and ends (a
client replaces a data part of the same id in place). They are not transient: `useChat`
keeps them in the message, and the page redraws the nested cards from them. Their
sizes are bounded (`TEXT_LIMIT`, `INPUT_LIMIT`, `OUTPUT_LIMIT` characters).

The `data` of a `data-subrun` part, `toolCallId` being the outer (top) agent call's id:

- `{"kind": "text", "toolCallId", "parent", "text"}`: a stretch of an inner run's text;
- `{"kind": "tool", "toolCallId", "parent", "key", "name", "input", "state", "output"}`:
  an inner call, `state` one of queued, running, awaiting, denied, cancelled, done,
  failed (`output` once it has one).

`parent` is where it belongs: the top agent call's id for the run inside it, or the
`key` of the inner agent call whose run reported it (`key` is its parent's key, "/",
and the inner call's id), so a run nested deeper draws inside its own card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agentstream import (
    ApprovalRequested,
    Event,
    ReasoningDelta,
    RunFailed,
    RunFinished,
    StepFinished,
    StepInterrupted,
    SubRunEvent,
    TextDelta,
    ToolCallDenied,
    ToolCancelled,
    ToolFinished,
    ToolPaused,
    ToolQueued,
    ToolStarted,
)

__all__ = ["INPUT_LIMIT", "OUTPUT_LIMIT", "TEXT_LIMIT", "NestedParts"]

TEXT_LIMIT = 20_000
"""The characters of one stretch of inner text kept in its `data-subrun` part."""
INPUT_LIMIT = 1_000
OUTPUT_LIMIT = 4_000

_ENDS = (StepFinished, StepInterrupted, RunFinished, RunFailed)
_STATES: dict[type, str] = {
    ToolQueued: "queued",
    ToolStarted: "running",
    ApprovalRequested: "awaiting",
    ToolPaused: "awaiting",
    ToolCallDenied: "denied",
    ToolCancelled: "cancelled",
}

Chunk = dict[str, Any]


@dataclass(slots=True)
class _Stretch:
    """Inner text still streaming in one container."""

    part: str
    top: str
    pieces: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Card:
    """What the page shows of one inner call."""

    top: str
    parent: str
    name: str
    input: str = ""
    state: str = ""


class NestedParts:
    """The parts the inner runs of a message's agent calls become (see the module)."""

    __slots__ = ("_cards", "_count", "_going", "_message_id", "_open")

    def __init__(self, message_id: str) -> None:
        self._message_id = message_id
        self._open: dict[str, _Stretch] = {}  # container -> its text streaming now
        self._cards: dict[str, _Card] = {}  # every inner call's card, by key
        self._going: dict[str, dict[str, None]] = {}  # top call -> its cards still going
        self._count = 0

    def feed(self, event: SubRunEvent, top: str, t: float) -> list[Chunk]:
        """The parts of one inner event; `top` is the UI id of this run's agent call."""
        inner = event.event
        parent = "/".join((top, *event.call_ids[1:]))
        outline: dict[str, Any] = {"type": inner.type}
        data: dict[str, Any] = {"toolCallId": top, "path": list(event.path), "parent": parent}
        chunks: list[Chunk] = []
        if type(inner) is TextDelta:
            outline["text"] = inner.text
            data["part"] = self._stretch(parent, top, inner.text)
        elif type(inner) is ReasoningDelta:
            outline["text"] = inner.text
        elif isinstance(inner, (ToolStarted, ToolFinished, ApprovalRequested)):
            outline["name"] = inner.name
        chunks.append(_timing("sub_run", t, step=event.step, **data, event=outline))
        if isinstance(inner, _ENDS):
            chunks.extend(self._close(parent))
        elif isinstance(inner, (*_STATES, ToolFinished)):
            chunks.extend(self._close(parent))
            chunks.append(self._card(inner, top, parent))
        return chunks

    def end(self, top: str, *, stopped: bool = False) -> list[Chunk]:
        """The agent call `top` has ended (or paused): its text still open, settled;
        if `stopped` (it ended), its inner calls still going marked cancelled (a call
        cancelled with its run reports no end of its own)."""
        if not self._open and not self._going:
            return []
        chunks: list[Chunk] = []
        for container in [key for key, open in self._open.items() if open.top == top]:
            chunks.extend(self._close(container))
        for key in self._going.pop(top, {}) if stopped else ():
            card = self._cards[key]
            card.state = "cancelled"
            chunks.append(self._part(key, card, None))
        return chunks

    def _stretch(self, parent: str, top: str, text: str) -> str:
        stretch = self._open.get(parent)
        if stretch is None:
            self._count += 1
            stretch = _Stretch(f"sub-{self._message_id}-{self._count}", top)
            self._open[parent] = stretch
        stretch.pieces.append(text)
        return stretch.part

    def _close(self, container: str) -> list[Chunk]:
        stretch = self._open.pop(container, None)
        if stretch is None:
            return []
        text = _cut("".join(stretch.pieces), TEXT_LIMIT)
        data = {"kind": "text", "toolCallId": stretch.top, "parent": container, "text": text}
        return [{"type": "data-subrun", "id": stretch.part, "data": data}]

    def _card(self, inner: Event, top: str, parent: str) -> Chunk:
        """An inner call's card as it stands now, under one id for all its updates."""
        key = f"{parent}/{getattr(inner, 'id', '')}"
        card = self._cards.get(key)
        if card is None:
            card = self._cards[key] = _Card(top, parent, getattr(inner, "name", ""))
        arguments = getattr(inner, "arguments", None)
        if arguments is not None:
            card.input = _cut(json.dumps(arguments, ensure_ascii=False, default=str), INPUT_LIMIT)
        if not isinstance(inner, ToolFinished):
            card.state = _STATES[type(inner)]
        elif card.state != "cancelled":  # a cancelled call is answered: it stays so
            card.state = "done" if inner.ok else "failed"
        going = self._going.setdefault(top, {})
        if card.state in ("queued", "running"):
            going[key] = None
        else:
            going.pop(key, None)
        said = inner.output if isinstance(inner, (ToolFinished, ToolCallDenied)) else None
        return self._part(key, card, said)

    def _part(self, key: str, card: _Card, output: str | None) -> Chunk:
        data: dict[str, Any] = {
            "kind": "tool", "toolCallId": card.top, "parent": card.parent, "key": key,
            "name": card.name, "input": card.input, "state": card.state,
        }  # fmt: skip
        if output is not None:
            data["output"] = _cut(output, OUTPUT_LIMIT)
        return {"type": "data-subrun", "id": f"sub-{self._message_id}-{key}", "data": data}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _timing(kind: str, t: float, **data: Any) -> Chunk:
    return {"type": "data-agentstream", "transient": True, "data": {"kind": kind, "t": t, **data}}
