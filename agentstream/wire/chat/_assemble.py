"""Merging streamed Chat Completions chunks into messages, without I/O.

`StreamAssembler.feed(chunk)` takes one chunk (a dict as parsed from the wire, or the
SDK's chunk object) and returns the events it produced; `finish()` returns the
assembled response. The rules it follows are those real servers demand: see
`shared/streams/README.md` in the project's history, summarised where they apply below.

Cost is linear in the size of the stream: text and arguments are kept as lists of
pieces and joined once, and the partial parse of arguments is refreshed only when
the arguments have grown by a fixed fraction since the last parse.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import Any, Literal

from ..._json import WholeObject
from ..._stream_events import (
    ReasoningDelta,
    RefusalDelta,
    ServerError,
    StreamEvent,
    TextDelta,
    TextDeltaTwin,
    ToolCallDelta,
    ToolCallDeltaTwin,
    ToolCallStarted,
)
from .._fields import CALL_KEYS as _CALL_KEYS
from .._fields import DELTA_KEYS as _DELTA_KEYS
from .._fields import Details as _Details
from .._fields import call_extras as _call_extras
from .._fields import message_extras as _message_extras
from .._message import AssembledChoice, AssembledResponse, AssembledToolCall
from .._partial_call import (
    PartialCall,
    drop_arguments,
    new_call_id,
    reparse_arguments,
)
from .._partial_call import final_arguments as _final_arguments
from ._parts import Choice as _Choice
from ._parts import assembled_message, error_message
from ._parts import malformed as _malformed
from ._parts import reasoning_texts as _reasoning_texts
from ._parts import text_parts as _text_parts

__all__ = ["StreamAssembler"]

_new_object = object.__new__


class StreamAssembler:
    """Merges the chunks of one streamed response; does no I/O.

    `step` is stamped on every event. `partial_arguments=False` skips the partial
    parse of tool arguments (events then carry `partial=None`). `new_id` makes ids
    for calls the server sent without one. A call whose arguments grow past
    `max_argument_size` characters is not buffered further: its pieces are dropped as
    they come, and the assembled call is marked `oversized`.
    """

    __slots__ = (
        "_choices",
        "_errors",
        "_id",
        "_max_arguments",
        "_model",
        "_new_id",
        "_partial",
        "_passed",
        "_step",
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
        self._step = step
        self._partial = partial_arguments
        self._new_id = new_id
        self._max_arguments = sys.maxsize if max_argument_size is None else max_argument_size
        self._choices: dict[int, _Choice] = {}
        self._usage: Mapping[str, Any] | None = None
        self._errors: list[Any] = []
        self._id: str | None = None
        self._model: str | None = None
        self._passed = 0  # first-choice calls `settled()` has looked at

    @property
    def errors(self) -> tuple[Any, ...]:
        """Error payloads received so far."""
        return tuple(self._errors)

    @property
    def finish_reason(self) -> str | None:
        """The first choice's finish reason so far."""
        choice = self._choices.get(0)
        return choice.finish_reason if choice else None

    def feed(self, chunk: Mapping[str, Any] | Any) -> list[StreamEvent]:
        """Merge one chunk; return the events it produced, in order.

        Raises `StreamError` if the chunk's structure cannot be read.
        """
        if type(chunk) is not dict and not isinstance(chunk, Mapping):
            dump = getattr(chunk, "model_dump", None)
            if not callable(dump):
                raise _malformed("not an object", chunk)
            chunk = dump(exclude_unset=True)
            if not isinstance(chunk, Mapping):
                raise _malformed("not an object", chunk)
        if self._id is None:
            chunk_id = chunk.get("id")
            if isinstance(chunk_id, str) and chunk_id:
                self._id = chunk_id
        if self._model is None:
            model = chunk.get("model")
            if isinstance(model, str) and model:
                self._model = model
        choices = chunk.get("choices")
        if (
            type(choices) is list
            and len(choices) == 1
            and chunk.get("usage") is None
            and "error" not in chunk
        ):
            event = self._lone_fragment(choices[0])
            if event is not None:
                return [event] if event else []
        events: list[StreamEvent] = []
        error = chunk.get("error")
        if error:
            self._errors.append(error)
            events.append(ServerError(self._step, error_message(error), error))
        if choices:
            if type(choices) is not list:
                raise _malformed("choices is not a list", choices)
            for choice in choices:
                self._feed_choice(choice, events)
        usage = chunk.get("usage")
        if usage is not None:
            if not isinstance(usage, Mapping):
                raise _malformed("usage is not an object", usage)
            self._usage = usage  # cumulative or repeated: the last one is the total
        return events

    def _lone_fragment(self, data: Any) -> StreamEvent | Literal[False] | None:
        """The chunks that make up nearly all of a stream, merged at the least cost.

        A choice already under way whose delta holds one piece of text, or one piece of
        arguments for a call already started, and nothing else. Returns its event, or
        False when the piece was empty; None (having changed nothing) for any other
        chunk, which then takes the full path, where a malformed one is reported.
        """
        try:
            delta = data["delta"]
            if len(delta) != 1 or data.get("finish_reason") is not None:
                return None
            number = data.get("index", 0)
            choice = self._choices.get(number) if type(number) is int else None
            if choice is None:
                return None
            content = delta.get("content")
            if type(content) is str:
                choice.content_seen = True
                if not content:
                    return False
                choice.content.append(content)
                event = TextDeltaTwin(self._step, number, content)
                event.__class__ = TextDelta
                return event  # type: ignore[no-any-return]
            (fragment,) = delta["tool_calls"]
            index = fragment["index"]
            call = choice.by_index.get(index) if type(index) is int else None
            if call is None or not call.started:
                return None
            function = fragment["function"]
            piece = function["arguments"]
            if (
                type(piece) is not str
                or len(function) != 1
                or (
                    len(fragment) != 2
                    and (
                        fragment.get("id") not in (None, call.id)
                        or not fragment.keys() <= _CALL_KEYS
                    )
                )
            ):
                return None
        except (LookupError, TypeError, ValueError, AttributeError):
            return None
        return self._add_piece(call, number, piece) if piece else False

    def _feed_choice(self, data: Any, events: list[StreamEvent]) -> None:
        if type(data) is not dict and not isinstance(data, Mapping):
            raise _malformed("choice is not an object", data)
        number = data.get("index")
        if type(number) is not int:
            number = number if isinstance(number, int) else 0
        choice = self._choices.get(number)
        if choice is None:
            choice = self._choices[number] = _Choice()
        delta = data.get("delta")
        if delta is None:
            delta = data.get("message")  # a few servers send a whole message at the end
        if delta:
            if type(delta) is not dict and not isinstance(delta, Mapping):
                raise _malformed("delta is not an object", delta)
            tool_calls = delta.get("tool_calls")
            # Nearly every chunk of a long call is a lone argument fragment: it skips
            # the text fields it does not have.
            if tool_calls is None or len(delta) > 1:
                self._feed_text(choice, number, delta, events)
            if tool_calls:
                self._feed_tool_calls(choice, number, tool_calls, events)
        # The finish reason is applied after the delta: they often share a chunk, and a
        # later null never clears it.
        reason = data.get("finish_reason")
        if reason is not None:
            if not isinstance(reason, str):
                raise _malformed("finish_reason is not a string", reason)
            if reason:
                choice.finish_reason = reason

    def _feed_text(
        self, choice: _Choice, number: int, delta: Mapping[str, Any], events: list[StreamEvent]
    ) -> None:
        """The role, text, refusal and reasoning of a delta."""
        step = self._step
        if choice.role is None:
            role = delta.get("role")
            if isinstance(role, str) and role:
                choice.role = role
        content = delta.get("content")
        if content is not None:
            choice.content_seen = True
            if isinstance(content, str):
                if content:
                    choice.content.append(content)
                    events.append(TextDelta(step, number, content))
            elif isinstance(content, list):
                for text in _text_parts(content):
                    choice.content.append(text)
                    events.append(TextDelta(step, number, text))
            else:
                raise _malformed("content is neither text nor a list of parts", content)
        refusal = delta.get("refusal")
        if refusal:
            if not isinstance(refusal, str):
                raise _malformed("refusal is not a string", refusal)
            choice.refusal.append(refusal)
            events.append(RefusalDelta(step, number, refusal))
        if len(delta) == 1 and content is not None:
            return  # text alone (with `role` it is two keys): nothing else to read
        # Each reasoning field is kept under its own name for the wire (`wire/_fields`).
        own = delta.get("reasoning_content")
        if type(own) is str and own:
            choice.reasoning_content.append(own)
        plain = delta.get("reasoning")
        if type(plain) is str and plain:
            choice.reasoning_field.append(plain)
        details = delta.get("reasoning_details")
        if details and type(details) is list:
            if choice.details is None:
                choice.details = _Details()
            choice.details.feed(details)
        reasoning = own or plain
        if reasoning:
            if isinstance(reasoning, str):
                choice.reasoning.append(reasoning)
                events.append(ReasoningDelta(step, number, reasoning))
        elif details and type(details) is list:
            # Servers that send `reasoning_details` next to `reasoning` repeat the same
            # text, so readers get the details only when the plain field is absent.
            for text in _reasoning_texts(details):
                choice.reasoning.append(text)
                events.append(ReasoningDelta(step, number, text))
        if not delta.keys() <= _DELTA_KEYS:
            choice.extra = _message_extras(choice.extra, delta)

    def _feed_tool_calls(
        self, choice: _Choice, number: int, tool_calls: Any, events: list[StreamEvent]
    ) -> None:
        if type(tool_calls) is not list:
            raise _malformed("tool_calls is not a list", tool_calls)
        several = len(tool_calls) > 1
        by_index = choice.by_index
        for position, fragment in enumerate(tool_calls):
            if type(fragment) is dict:
                # The common case first: more arguments for a call already started, by
                # its index, with no other field (or the same id again).
                index = fragment.get("index")
                call = by_index.get(index) if type(index) is int else None
                function = fragment.get("function")
                if (
                    call is not None
                    and call.started
                    and type(function) is dict
                    and len(function) == 1
                    and (
                        len(fragment) == 2
                        or (fragment.get("id") in (None, call.id) and fragment.keys() <= _CALL_KEYS)
                    )
                ):
                    piece = function.get("arguments")
                    if type(piece) is str:
                        if piece:
                            event = self._add_piece(call, number, piece)
                            if event:
                                events.append(event)
                        continue
            elif not isinstance(fragment, Mapping):
                raise _malformed("tool call is not an object", fragment)
            call = self._identify(choice, fragment, position if several else None)
            self._feed_fragment(call, number, fragment, events)

    def _add_piece(
        self, call: PartialCall, number: int, piece: str
    ) -> ToolCallDelta | Literal[False]:
        """A non-empty piece of arguments for a call that has started (so has a name).

        Returns its event, or False when the call is past the size limit.
        """
        size = call.size = call.size + len(piece)
        if size > self._max_arguments:
            drop_arguments(call)
            return False
        call.pieces.append(piece)
        if size >= call.parse_at:
            reparse_arguments(call)
        # ToolCallDelta(self._step, number, call.position, call.id, call.name, piece,
        # call.partial), made as its unfrozen twin (see `_events._unfrozen_twin`) and
        # without even the twin's __init__: on most streams this is most chunks.
        event = _new_object(ToolCallDeltaTwin)
        event.step = self._step
        event.choice = number
        event.index = call.position
        event.id = call.id
        event.name = call.name
        event.delta = piece
        event.partial = call.partial
        event.type = "tool_call_delta"
        event.__class__ = ToolCallDelta
        return event  # type: ignore[no-any-return]

    def _identify(
        self, choice: _Choice, fragment: Mapping[str, Any], position: int | None
    ) -> PartialCall:
        """Find the call a fragment belongs to, or open a new one.

        By `index` when present; else by a non-empty `id`; else, when several fragments
        share the delta, by their position in it; else the last open call, unless the
        fragment names a new call. Never by the chunk's own id.
        """
        index = fragment.get("index")
        call_id = fragment.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = None
        if isinstance(index, int) and not isinstance(index, bool):
            call = choice.by_index.get(index)
            if call is None:
                # A new index is a new call, even with an id seen before (several servers
                # give parallel calls one id), unless that id's call came without an index.
                call = choice.by_id.get(call_id) if call_id is not None else None
                if call is None or call.indexed:
                    call = self._open(choice)
                call.indexed = True
                choice.by_index[index] = call
            elif (
                call_id is not None
                and call.id not in (None, call_id)
                and self._names_new_call(call, fragment)
            ):
                # Another id at a known index: some servers change the id on every
                # fragment, others reuse index 0 for each call. A fresh name decides.
                call = choice.by_id.get(call_id) or self._open(choice)
                choice.by_index[index] = call
            return call
        choice.anonymous = True  # see `settled`
        if call_id is not None:
            call = choice.by_id.get(call_id)
            return call if call is not None else self._open(choice)
        if position is not None:
            call = choice.by_index.get(position)
            if call is None:
                call = choice.by_index[position] = self._open(choice)
            return call
        if choice.calls and not self._names_new_call(choice.calls[-1], fragment):
            return choice.calls[-1]
        return self._open(choice)

    @staticmethod
    def _names_new_call(last: PartialCall, fragment: Mapping[str, Any]) -> bool:
        """Whether an anonymous fragment starts a call rather than continuing `last`."""
        function = fragment.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str) or not name or last.name is None:
            return False
        if name != last.name:
            return True
        # The same name again: a new call only if the last one's arguments are whole,
        # read incrementally: a server repeating the name on every piece of one call
        # must not cost a parse of all the arguments per piece.
        if last.oversized:
            return False
        whole = last.whole
        if whole is None:
            whole = last.whole = WholeObject()
        return whole.feed(last.tail(last.size - whole.seen), last.arguments)

    def _open(self, choice: _Choice) -> PartialCall:
        call = PartialCall(
            len(choice.calls), 1 if self._partial else sys.maxsize, len(choice.content)
        )
        choice.calls.append(call)
        return call

    def _feed_fragment(
        self, call: PartialCall, number: int, fragment: Mapping[str, Any], events: list[StreamEvent]
    ) -> None:
        if call.id is None:
            call_id = fragment.get("id")
            if isinstance(call_id, str) and call_id:
                call.id = call_id
                self._choices[number].by_id[call_id] = call
        if not fragment.keys() <= _CALL_KEYS:
            call.extra = _call_extras(call.extra, fragment)
        function = fragment.get("function")
        if function is None:
            return
        if not isinstance(function, Mapping):
            raise _malformed("function is not an object", function)
        if call.name is None:
            name = function.get("name")
            if name is not None and not isinstance(name, str):
                raise _malformed("function name is not a string", name)
            if name:
                call.name = name
        piece = function.get("arguments")
        if piece is not None and not isinstance(piece, str):
            if not isinstance(piece, (Mapping, list)):
                raise _malformed("arguments are neither text nor JSON", piece)
            try:
                piece = json.dumps(piece)  # a few servers send the arguments as an object
            except (ValueError, TypeError, RecursionError):
                raise _malformed("arguments cannot be written as JSON", piece) from None
        if piece:
            call.size += len(piece)
            if call.size <= self._max_arguments:
                call.pieces.append(piece)
            else:
                drop_arguments(call)
                piece = ""
        name = call.name
        if name is None:
            return  # arguments before the name are sent on when the name comes
        if not call.started:
            call.started = True
            events.append(ToolCallStarted(self._step, number, call.position, call.id, name))
            piece = call.arguments()
        if piece:
            if call.size >= call.parse_at:
                reparse_arguments(call)
            events.append(
                ToolCallDelta(self._step, number, call.position, call.id, name, piece, call.partial)
            )

    def settled(self) -> list[AssembledToolCall]:
        """The first choice's tool calls that became final since the last call of this.

        A call is final when the stream has moved past it (a later call opened, text
        came after it, or the choice's finish reason arrived) and its arguments are one
        strictly valid JSON object: a closed object cannot grow into another valid one.
        While the server sends fragments without an `index` (calls found by id, by
        position or as the last open one), nothing is final before the finish: a later
        fragment could still reach an earlier call. Each call is reported once; one
        that is not valid when the stream moves past it (blank arguments before the
        finish included) is never reported. A call the server gave no id gets one now,
        the same that `finish()` reports. Costs nothing while the stream has not moved.
        """
        choice = self._choices.get(0)
        if choice is None:
            return []
        calls = choice.calls
        count = len(calls)
        finished = choice.finish_reason is not None
        if not finished:
            if choice.anonymous or not count:
                return []
            if len(choice.content) <= calls[-1].text_at:
                count -= 1  # nothing yet after the last call
        start = self._passed
        if count <= start:
            return []
        self._passed = count
        final = []
        for call in calls[start:count]:
            arguments = _final_arguments(call, finished)
            if arguments is None:
                continue
            if call.id is None:
                call.id = self._new_id()
                call.generated = True
            final.append(
                AssembledToolCall(call.position, call.id, call.name, arguments, call.generated)
            )
        return final

    def finish(self) -> AssembledResponse:
        """Return the assembled response. The assembler can still be fed afterwards."""
        choices = tuple(
            AssembledChoice(number, assembled_message(choice, self._new_id), choice.finish_reason)
            for number, choice in sorted(self._choices.items())
        )
        return AssembledResponse(choices, self._usage, self._id, self._model, tuple(self._errors))
