"""A `Reply` as the events of a streamed Responses API answer (no I/O).

The events are those OpenAI sends, in its order: `response.created`, `.in_progress`,
then per output item (reasoning, the message, each function call) `output_item.added`,
its parts and deltas, their `.done`, `output_item.done`, and last `response.completed`
with the whole output and the usage. A reply whose `finish_reason` is `"length"` ends
`response.incomplete` (`max_output_tokens`) with its last item cut short.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._chunks import Stamp, pieces, words
from ._reply import Reply

__all__ = ["failed_events", "responses_events", "responses_usage"]


def responses_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """A usage object in the Responses shape (one in the chat shape is converted)."""
    if "input_tokens" in usage or "prompt_tokens" not in usage:
        return dict(usage)
    completion = usage.get("completion_tokens_details")
    prompt = usage.get("prompt_tokens_details")
    reasoning = completion.get("reasoning_tokens", 0) if isinstance(completion, Mapping) else 0
    cached = prompt.get("cached_tokens", 0) if isinstance(prompt, Mapping) else 0
    return {
        "input_tokens": usage.get("prompt_tokens", 0),
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": usage.get("completion_tokens", 0),
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.get("total_tokens", 0),
    }


@dataclass(slots=True)
class _Stream:
    """The events so far and the finished items, numbered as the server numbers them."""

    stamp: Stamp
    events: list[dict[str, Any]]
    output: list[dict[str, Any]]

    def emit(self, kind: str, **fields: Any) -> None:
        self.events.append({"type": kind, "sequence_number": len(self.events), **fields})

    def response(self, status: str, **fields: Any) -> dict[str, Any]:
        return {
            "id": self.stamp.completion_id,
            "object": "response",
            "created_at": self.stamp.created,
            "status": status,
            "model": self.stamp.model,
            "output": list(self.output),
            "parallel_tool_calls": True,
            "store": False,
            "usage": None,
            **fields,
        }

    def item(self, item: dict[str, Any]) -> int:
        """Announce `item`; return its `output_index`."""
        index = len(self.output)
        self.emit("response.output_item.added", output_index=index, item=item)
        return index

    def finish_item(self, index: int, item: dict[str, Any]) -> None:
        self.emit("response.output_item.done", output_index=index, item=item)
        self.output.append(item)


def _reasoning(stream: _Stream, text: str, encrypted: str | None) -> None:
    item_id = f"rs_{stream.stamp.completion_id}_{len(stream.output)}"
    index = stream.item({"id": item_id, "type": "reasoning", "summary": []})
    where = {"item_id": item_id, "output_index": index, "summary_index": 0}
    part = {"type": "summary_text", "text": ""}
    stream.emit("response.reasoning_summary_part.added", **where, part=part)
    for word in words(text):
        stream.emit("response.reasoning_summary_text.delta", **where, delta=word)
    stream.emit("response.reasoning_summary_text.done", **where, text=text)
    part = {"type": "summary_text", "text": text}
    stream.emit("response.reasoning_summary_part.done", **where, part=part)
    done: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": [part]}
    if encrypted is not None:
        done["encrypted_content"] = encrypted
    stream.finish_item(index, done)


def _message(stream: _Stream, text: str, *, refusal: bool, cut: bool) -> None:
    item_id = f"msg_{stream.stamp.completion_id}_{len(stream.output)}"
    head = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant"}
    index = stream.item({**head, "content": []})
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    kind, key = ("refusal", "refusal") if refusal else ("output_text", "text")
    empty = {"type": kind, key: ""} if refusal else {"type": kind, "annotations": [], "text": ""}
    stream.emit("response.content_part.added", **where, part=empty)
    sent = words(text)
    if cut:
        sent = sent[: max(1, len(sent) // 2)]
    delta = "response.refusal.delta" if refusal else "response.output_text.delta"
    for word in sent:
        extra: dict[str, Any] = {} if refusal else {"logprobs": []}
        stream.emit(delta, **where, delta=word, **extra)
    whole = "".join(sent)
    part = {**empty, key: whole}
    if not cut:
        stream.emit(delta.replace(".delta", ".done"), **where, **{key: whole})
        stream.emit("response.content_part.done", **where, part=part)
    status = "incomplete" if cut else "completed"
    stream.finish_item(index, {**head, "status": status, "content": [part]})


def _call(stream: _Stream, name: str, arguments: str, call_id: str, size: int, cut: bool) -> None:
    item_id = f"fc_{stream.stamp.completion_id}_{len(stream.output)}"
    head = {"id": item_id, "type": "function_call", "call_id": call_id, "name": name}
    index = stream.item({**head, "status": "in_progress", "arguments": ""})
    where = {"item_id": item_id, "output_index": index}
    sent = pieces(arguments, size)
    if cut:
        sent = sent[: len(sent) // 2]
    for piece in sent:
        stream.emit("response.function_call_arguments.delta", **where, delta=piece)
    if cut:
        done = {**head, "status": "incomplete", "arguments": "".join(sent)}
    else:
        stream.emit("response.function_call_arguments.done", **where, arguments=arguments)
        done = {**head, "status": "completed", "arguments": arguments}
    stream.finish_item(index, done)


def responses_events(
    reply: Reply, stamp: Stamp, usage: Mapping[str, Any], *, encrypted: str | None = None
) -> list[dict[str, Any]]:
    """The events an OpenAI server streams for `reply`.

    `encrypted`: the reasoning item's `encrypted_content` (when the request `include`s
    it). A `finish_reason` of `"length"` cuts the last item and ends
    `response.incomplete`; any other is implied by the items.
    """
    stream = _Stream(stamp, [], [])
    stream.emit("response.created", response=stream.response("in_progress"))
    stream.emit("response.in_progress", response=stream.response("in_progress"))
    cut = reply.finish_reason == "length"
    if reply.reasoning is not None:
        _reasoning(stream, reply.reasoning, encrypted)
    calls = list(zip(reply.tool_calls, stamp.call_ids, strict=True))
    if reply.text is not None:
        _message(stream, reply.text, refusal=False, cut=cut and not calls)
    if reply.refusal is not None:
        _message(stream, reply.refusal, refusal=True, cut=False)
    for number, (call, call_id) in enumerate(calls, 1):
        last = number == len(calls)
        _call(stream, call.name, call.arguments_json, call_id, reply.piece_size, cut and last)
    if cut:
        details = {"reason": "max_output_tokens"}
        final = stream.response("incomplete", usage=dict(usage), incomplete_details=details)
        stream.emit("response.incomplete", response=final)
    else:
        stream.emit("response.completed", response=stream.response("completed", usage=dict(usage)))
    return stream.events


def failed_events(sequence: int, stamp: Stamp, message: str) -> list[dict[str, Any]]:
    """An `error` event and the `response.failed` that follows it."""
    error = {"code": "server_error", "message": message}
    response = {
        "id": stamp.completion_id,
        "object": "response",
        "created_at": stamp.created,
        "status": "failed",
        "model": stamp.model,
        "output": [],
        "error": error,
        "usage": None,
    }
    return [
        {"type": "error", "sequence_number": sequence, **error, "param": None},
        {"type": "response.failed", "sequence_number": sequence + 1, "response": response},
    ]
