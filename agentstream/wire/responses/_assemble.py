"""Merging the events of a streamed Responses API reply into output items, without I/O.

`ResponsesAssembler.feed(event)` takes one event (a dict as parsed from an SSE `data:`
line, or the SDK's event object) and returns the same typed events as the Chat
Completions assembler; `finish()` returns the assembled output. The rules real servers
demand (see `tests/recordings/responses/README.md`), where they apply below:

- items are keyed by `output_index` (item ids rotate on some servers, or are missing);
  an item may be added before the previous one is done, or never be done;
- the finished values (`.done` events, `output_item.done`, the terminal response's
  output) are the final word where they differ from the deltas: LM Studio sends
  arguments only in `.done`. What they add to the deltas is sent on as one more delta,
  so the events always tell the whole text and arguments;
- unknown event and item types are carried along, never rejected; `sequence_number`
  is not relied on; a stream may start part-way (no `response.created`).

Cost is linear in the size of the stream, as in `chat/_assemble`: pieces are joined once,
partial arguments re-parsed on a geometric schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..._exceptions import StreamError
from ..._stream_events import (
    ReasoningDelta,
    ReasoningDeltaTwin,
    ServerError,
    StreamEvent,
    TextDelta,
    TextDeltaTwin,
)
from .._message import AssembledToolCall
from .._partial_call import final_arguments, new_call_id
from ._items import Item, build_output
from ._merge import EVENT_CLASS, ItemMerger
from ._output import (
    AssembledResponsesOutput,
    ResponseFailure,
    error_text,
    finish_reason,
    stream_error,
)

__all__ = ["ResponsesAssembler"]

_new_object = object.__new__

_TEXT = "response.output_text.delta"
_ARGUMENTS = "response.function_call_arguments.delta"
_RAW_REASONING = "response.reasoning_text.delta"
_SUMMARY = "response.reasoning_summary_text.delta"
_TERMINAL = {
    "response.completed": "completed",
    "response.incomplete": "incomplete",
    "response.failed": "failed",
}
_STARTING = frozenset({"response.created", "response.in_progress", "response.queued"})
# Text events: (item kind, part kind, the key of the index, the key of the full text).
_TEXTS: dict[str, tuple[str, str, str, str]] = {
    _TEXT: ("message", "output_text", "content_index", "text"),
    "response.output_text.done": ("message", "output_text", "content_index", "text"),
    "response.refusal.delta": ("message", "refusal", "content_index", "refusal"),
    "response.refusal.done": ("message", "refusal", "content_index", "refusal"),
    _RAW_REASONING: ("reasoning", "reasoning_text", "content_index", "text"),
    "response.reasoning_text.done": ("reasoning", "reasoning_text", "content_index", "text"),
    _SUMMARY: ("reasoning", "summary_text", "summary_index", "text"),
    "response.reasoning_summary_text.done": ("reasoning", "summary_text", "summary_index", "text"),
}
_PART_EVENTS = frozenset(
    {
        "response.content_part.added",
        "response.content_part.done",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_part.done",
    }
)


def _malformed(what: str, value: Any) -> StreamError:
    # Never the repr of a value of unknown shape: a deep one recurses, a huge int raises.
    shown = repr(value[:200]) if isinstance(value, str) else type(value).__name__
    return StreamError(f"malformed event: {what}: {shown}", body=value)


def _number(value: Any) -> int:
    """An index field: an int as sent, else 0 (servers that send one part omit it)."""
    return value if type(value) is int else 0


class ResponsesAssembler(ItemMerger):
    """Merges the events of one streamed Responses API reply; does no I/O.

    The parameters are those of `StreamAssembler`: `step` stamped on every event,
    `partial_arguments=False` to skip the partial parse of arguments, `new_id` for calls
    sent without a call id, `max_argument_size` past which a call's arguments are
    dropped and the call marked `oversized`. Events carry `choice` 0; a tool call's
    `index` is its `output_index`.
    """

    __slots__ = (
        "_closed",
        "_ended",
        "_errors",
        "_failure",
        "_id",
        "_incomplete",
        "_model",
        "_new_id",
        "_reported",
        "_status",
        "_usage",
    )

    def __init__(
        self,
        *,
        step: int = 0,
        partial_arguments: bool = True,
        new_id: Callable[[], str] = new_call_id,
        max_argument_size: int | None = None,
    ) -> None:
        super().__init__(step, partial_arguments, max_argument_size)
        self._new_id = new_id
        self._status: str | None = None
        self._incomplete: str | None = None
        self._ended = False
        self._usage: Mapping[str, Any] | None = None
        self._errors: list[Any] = []
        self._failure: ResponseFailure | None = None
        self._id: str | None = None
        self._model: str | None = None
        self._closed: list[Item] = []  # items closed since the last `settled()`
        self._reported: set[int] = set()  # the calls `settled()` has reported

    @property
    def errors(self) -> tuple[Any, ...]:
        """Error payloads received so far."""
        return tuple(self._errors)

    @property
    def status(self) -> str | None:
        """The response's status so far (`completed`, `incomplete`, `failed` at the end)."""
        return self._status

    @property
    def finish_reason(self) -> str | None:
        """The Chat Completions finish reason the response amounts to so far (see
        `AssembledResponsesOutput.finish_reason`): None until a terminal event."""
        calls = any(item.kind == "function_call" for item in self._items.values())
        return finish_reason(self._status if self._ended else None, self._incomplete, calls)

    def stream_error(self) -> StreamError | None:
        """`finish().stream_error()`, without assembling the output."""
        return stream_error(self._failure, self._ended)

    def settled(self) -> list[AssembledToolCall]:
        """The function calls that became final since the last call of this.

        A call is final when its `function_call_arguments.done` or a complete
        `output_item.done` came and its arguments are one strictly valid JSON object
        (none at all reads as `{}`). Each call is reported once, at the first of its
        `.done` events that makes it so. A call the server gave no id gets one now,
        the same that `finish()` reports. Costs nothing while no item closes.
        """
        if not self._closed:
            return []
        closed, self._closed = self._closed, []
        final = []
        for item in closed:
            call = item.call
            if call is None or item.cut or item.index in self._reported:
                continue
            arguments = final_arguments(call, True)
            if arguments is None or item.kind != "function_call":
                continue  # not (yet) one valid object: a later `.done` may make it one
            self._reported.add(item.index)
            if call.id is None:
                call.id = self._new_id()
                item.generated = True
            final.append(
                AssembledToolCall(item.index, call.id, call.name, arguments, item.generated)
            )
        return final

    def feed(self, event: Mapping[str, Any] | Any) -> list[StreamEvent]:
        """Merge one event; return the events it produced, in order.

        Raises `StreamError` if the event cannot be read (not an object, a delta that
        is not text). Unknown event types produce nothing and are not an error.
        """
        if type(event) is not dict:
            event = _as_mapping(event)
        kind = event.get("type")
        # The deltas that make up nearly all of a stream, merged at the least cost: for an
        # item and part already known, with a text piece. Anything else (a missing key, a
        # value that cannot be a key) takes the full path below, where it is checked.
        if kind == _TEXT:
            try:
                part = self._items[event["output_index"]].parts[event.get("content_index", 0)]
                piece = event["delta"]
            except (KeyError, TypeError):
                pass
            else:
                if type(piece) is str and piece:
                    part.pieces.append(piece)
                    # TextDelta(self._step, 0, piece), built as its unfrozen twin without
                    # even its __init__ (see `_events._unfrozen_twin`): a fifth cheaper.
                    made = _new_object(TextDeltaTwin)
                    made.step = self._step
                    made.choice = 0
                    made.text = piece
                    made.type = "text_delta"
                    made.__class__ = TextDelta
                    return [made]
        elif kind == _ARGUMENTS:
            try:
                call = self._items[event["output_index"]].call
                piece = event["delta"]
            except (KeyError, TypeError):
                pass
            else:
                if call is not None and call.started and type(piece) is str and piece:
                    made = self._add_piece(call, piece)
                    return [made] if made is not None else []
        elif kind in (_SUMMARY, _RAW_REASONING):
            try:
                item = self._items[event["output_index"]]
                if kind == _SUMMARY:
                    part = item.summary[event.get("summary_index", 0)]
                else:
                    part = item.parts[event.get("content_index", 0)]
                piece = event["delta"]
            except (KeyError, TypeError):
                pass
            else:
                if type(piece) is str and piece:
                    part.pieces.append(piece)
                    made = _new_object(ReasoningDeltaTwin)
                    made.step = self._step
                    made.choice = 0
                    made.text = piece
                    made.type = "reasoning_delta"
                    made.__class__ = ReasoningDelta
                    return [made]
        events: list[StreamEvent] = []
        self._feed(event, kind, events)
        return events

    def _feed(self, event: Mapping[str, Any], kind: Any, events: list[StreamEvent]) -> None:
        """Every event, by its type (the full path: checks every field)."""
        if type(kind) is not str:
            if "error" in event:  # a bare `{"error": ...}` payload, as some proxies send
                self._error(event["error"], events)
            return
        if kind in _TEXTS:
            self._text_event(kind, event, events)
        elif kind == _ARGUMENTS:
            item = self._locate(event, "function_call")
            piece = event.get("delta")
            if not isinstance(piece, str):
                raise _malformed("arguments delta is not a string", piece)
            self._arguments_piece(item, piece, events)
        elif kind == "response.function_call_arguments.done":
            item = self._locate(event, "function_call")
            call = self._call(item)
            name = event.get("name")
            if call.name is None and isinstance(name, str) and name:
                call.name = name
            arguments = event.get("arguments")
            if isinstance(arguments, str):
                self._settle_arguments(item, arguments, events)
            item.closed = True
            self._closed.append(item)
        elif kind == "response.output_item.added" or kind == "response.output_item.done":
            raw = event.get("item")
            if isinstance(raw, Mapping):
                item = self._locate(event, raw.get("type"), raw.get("id"))
                self._take_item(item, raw, events)
                if kind == "response.output_item.done":
                    item.closed = raw.get("status") != "incomplete"
                    item.cut = not item.closed
                    if item.closed and item.call is not None:
                        self._closed.append(item)
        elif kind in _PART_EVENTS:
            part = event.get("part")
            if isinstance(part, Mapping):
                summary = "summary" in kind
                item = self._locate(event, "reasoning" if summary else None)
                index = _number(event.get("summary_index" if summary else "content_index"))
                self._take_part(item, item.summary if summary else item.parts, index, part, events)
        elif kind == "response.output_text.annotation.added":
            item = self._locate(event, "message")
            part = self._part(item.parts, _number(event.get("content_index")), "output_text")
            part.annotations.append(event.get("annotation"))
        elif kind in _TERMINAL:
            self._terminal(kind, event, events)
        elif kind in _STARTING:
            response = event.get("response")
            if isinstance(response, Mapping):
                self._response_object(response)
        elif kind == "error":
            error = event.get("error")
            self._error(error if isinstance(error, Mapping) else event, events)

    def _text_event(self, kind: str, event: Mapping[str, Any], events: list[StreamEvent]) -> None:
        """A text, refusal or reasoning delta (its full path) or `.done`."""
        item_kind, part_kind, index_key, text_key = _TEXTS[kind]
        item = self._locate(event, item_kind)
        parts = item.summary if part_kind == "summary_text" else item.parts
        part = self._part(parts, _number(event.get(index_key)), part_kind)
        if kind.endswith(".done"):
            text = event.get(text_key)
            if isinstance(text, str):
                self._settle(part, text, events)
            return
        piece = event.get("delta")
        if not isinstance(piece, str):
            raise _malformed(f"{kind} is not a string", piece)
        if piece:
            part.pieces.append(piece)
            events.append(EVENT_CLASS[part_kind](self._step, 0, piece))

    def _response_object(self, response: Mapping[str, Any]) -> None:
        """The id and model of the first response object that has them, and its status."""
        if self._id is None:
            response_id = response.get("id")
            if isinstance(response_id, str) and response_id:
                self._id = response_id
        if self._model is None:
            model = response.get("model")
            if isinstance(model, str) and model:
                self._model = model
        status = response.get("status")
        if isinstance(status, str) and status and not self._ended:
            self._status = status

    def _terminal(self, kind: str, event: Mapping[str, Any], events: list[StreamEvent]) -> None:
        """`response.completed`, `.incomplete` or `.failed`: the final word on the output."""
        response = event.get("response")
        if not isinstance(response, Mapping):
            response = {}
        self._response_object(response)
        self._ended = True
        self._status = _TERMINAL[kind]
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, Mapping) else None
        self._incomplete = reason if isinstance(reason, str) else None
        usage = response.get("usage")
        if isinstance(usage, Mapping):
            self._usage = usage
        if kind == "response.failed":
            error = response.get("error")
            if error is not None or self._failure is None:
                self._error(error, events)
        output = response.get("output")
        if type(output) is list:
            for index, raw in enumerate(output):
                if isinstance(raw, Mapping):
                    item = self._listed_item(index, raw)
                    item.terminal = True
                    self._take_item(item, raw, events)
                    if raw.get("status") == "incomplete":
                        item.cut = True

    def _listed_item(self, position: int, raw: Mapping[str, Any]) -> Item:
        """The item an entry of the terminal output is about: the one at its position
        (its `output_index`), unless that one is of another type (a server that leaves
        items out of its final list); then the one with its id, else a new one."""
        item = self._items.get(position)
        kind = raw.get("type")
        if item is not None and (not item.kind or item.kind == kind):
            return item
        item_id = raw.get("id")
        known = self._by_id.get(item_id) if isinstance(item_id, str) else None
        if known is not None and known.kind == kind:
            return known
        place = position if item is None else self._next
        return self._locate({"output_index": place}, kind, item_id)

    def _error(self, error: Any, events: list[StreamEvent]) -> None:
        """An error the server reported: recorded, reported, and the response failed."""
        message = error_text(error)
        code = error.get("code") if isinstance(error, Mapping) else None
        if type(code) is int and -(1 << 62) < code < 1 << 62:
            code = str(code)  # HTTP-style codes; a huge int would not even print
        code = code if isinstance(code, str) else None
        failure = ResponseFailure(code, message, error)
        known = self._failure
        if known is not None and known.message == message:
            return  # `response.failed` repeating the `error` event before it
        if error is not None:
            self._errors.append(error)
        events.append(ServerError(self._step, message, error))
        if known is None:
            self._failure = failure

    def finish(self) -> AssembledResponsesOutput:
        """Return the assembled output. The assembler can still be fed afterwards."""
        return build_output(
            self._items,
            new_id=self._new_id,
            status=self._status,
            incomplete_reason=self._incomplete,
            ended=self._ended,
            usage=self._usage,
            id=self._id,
            model=self._model,
            errors=tuple(self._errors),
            failure=self._failure,
        )


def _as_mapping(event: Any) -> Mapping[str, Any]:
    if isinstance(event, Mapping):
        return event
    dump = getattr(event, "model_dump", None)
    if callable(dump):
        event = dump(exclude_unset=True)
        if isinstance(event, Mapping):
            return event
    raise _malformed("not an object", event)
