"""The assembled result of a Responses API stream, and its reduced replay shape.

Plain frozen values; `ResponsesAssembler` (in `_assemble`) builds them. The output
items are kept as the server's own dicts (the final word on each item), so they can be
sent back as input items; the typed fields are read from those same dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..._exceptions import StreamError
from ..._usage import Usage
from .._message import AssembledMessage, AssembledToolCall

__all__ = [
    "AssembledReasoning",
    "AssembledResponsesOutput",
    "ResponseFailure",
    "error_text",
    "finish_reason",
    "part_texts",
    "reduce_output",
    "responses_usage",
    "stream_error",
]

_FAILED = "the server reported an error"


@dataclass(frozen=True, slots=True)
class AssembledReasoning:
    """A reasoning item: what to show, and what to send back on a stateless next turn."""

    index: int
    """The item's `output_index`."""
    id: str | None
    summary: tuple[str, ...]
    """The text of each summary part, in order (empty when the server sent none)."""
    text: str | None
    """Raw reasoning (`reasoning_text` parts joined), from servers that stream it."""
    encrypted_content: str | None
    """The opaque `encrypted_content`, the last one seen, to carry into the next request."""

    @property
    def summary_text(self) -> str:
        """The summary parts joined with no separator."""
        return "".join(self.summary)


@dataclass(frozen=True, slots=True)
class ResponseFailure:
    """Why a response failed: from an `error` event or `response.failed`."""

    code: str | None
    message: str
    body: Any
    """The error object as the server sent it."""


@dataclass(frozen=True, slots=True)
class AssembledResponsesOutput:
    """Everything a Responses API stream said, merged.

    `tool_calls` hold the `function_call` items in output order; a call's `index` is
    its `output_index` and its `id` the `call_id` as sent (servers that count `call_0`,
    `call_1` repeat them across replies). `cut_calls` lists the indexes of calls not
    known to be whole (the stream failed, stopped early or was `incomplete` before the
    call was finished): they must never run.
    """

    status: str | None
    """`completed`, `incomplete` or `failed` from the terminal event; before one came,
    the last status seen (`queued`, `in_progress`), or None."""
    incomplete_reason: str | None
    """`incomplete_details.reason`, e.g. `max_output_tokens` or `content_filter`."""
    text: str | None
    """The `output_text` of the message items joined; None when there was no message."""
    refusal: str | None
    reasoning: tuple[AssembledReasoning, ...]
    tool_calls: tuple[AssembledToolCall, ...]
    cut_calls: tuple[int, ...]
    items: tuple[Mapping[str, Any], ...]
    """Every output item in order, as the server last sent it (terminal response,
    `output_item.done`, or rebuilt from the deltas when neither came)."""
    usage: Mapping[str, Any] | None
    """The terminal response's `usage`, as sent."""
    id: str | None
    model: str | None
    errors: tuple[Any, ...]
    """Error payloads the server sent in the stream."""
    failure: ResponseFailure | None
    ended: bool
    """Whether a terminal event (`completed`, `incomplete`, `failed`) arrived."""

    @property
    def finish_reason(self) -> str | None:
        """The Chat Completions finish reason this outcome amounts to.

        `tool_calls` or `stop` when completed, `length` when incomplete for
        `max_output_tokens`, the incomplete reason otherwise, None when failed or unended.
        """
        return finish_reason(self.status, self.incomplete_reason, bool(self.tool_calls))

    @property
    def usage_summary(self) -> Usage | None:
        """`usage` as a `Usage` value."""
        return responses_usage(self.usage) if self.usage is not None else None

    @property
    def message(self) -> AssembledMessage:
        """The output as one assistant message (reasoning: summaries, else raw text)."""
        reasoning = "".join(item.summary_text or item.text or "" for item in self.reasoning)
        return AssembledMessage(
            content=self.text,
            tool_calls=self.tool_calls,
            refusal=self.refusal,
            reasoning=reasoning or None,
        )

    def stream_error(self) -> StreamError | None:
        """The error to raise for this stream, or None when it ended as a whole response.

        An error event or `response.failed` is a failure; so is a stream that ended
        without a terminal event (the body may have been cut). `incomplete` is not an
        error: its cut calls are listed in `cut_calls`.
        """
        return stream_error(self.failure, self.ended)


def stream_error(failure: ResponseFailure | None, ended: bool) -> StreamError | None:
    """The error to raise for a stream that ended so (see `stream_error` above)."""
    if failure is not None:
        return StreamError(
            f"the server reported an error in the stream: {failure.message}", body=failure.body
        )
    if not ended:
        return StreamError(
            "the stream ended early: no response.completed, response.incomplete or response.failed"
        )
    return None


def finish_reason(status: str | None, incomplete: str | None, calls: bool) -> str | None:
    """The Chat Completions finish reason of a response's status (see `finish_reason`)."""
    if status == "completed":
        return "tool_calls" if calls else "stop"
    if status == "incomplete":
        reason = incomplete or "length"
        return "length" if reason == "max_output_tokens" else reason
    return None


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    return value if type(value) is int else 0


def _detail(data: Mapping[str, Any], group: str, key: str) -> int:
    details = data.get(group)
    return _count(details, key) if isinstance(details, Mapping) else 0


def responses_usage(data: Mapping[str, Any]) -> Usage:
    """Read a Responses `usage` object: input → prompt, output → completion tokens.

    A usage object in the Chat Completions shape (some proxies send one) is read as such.
    """
    if "input_tokens" not in data and "prompt_tokens" in data:
        return Usage.from_dict(data)
    prompt = _count(data, "input_tokens")
    completion = _count(data, "output_tokens")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=_count(data, "total_tokens") or prompt + completion,
        reasoning_tokens=_detail(data, "output_tokens_details", "reasoning_tokens"),
        cached_tokens=_detail(data, "input_tokens_details", "cached_tokens"),
    )


def error_text(error: Any) -> str:
    """A short message for an error payload, read without recursing into it."""
    if isinstance(error, Mapping):
        for key in ("message", "code", "type"):
            value = error.get(key)
            if isinstance(value, str) and value:
                return value[:500]
        inner = error.get("error")
        if isinstance(inner, Mapping):
            value = inner.get("message")
            if isinstance(value, str) and value:
                return value[:500]
    elif isinstance(error, str) and error:
        return error[:500]
    return _FAILED


def part_texts(parts: Any, kind: str, key: str) -> list[str]:
    """The `key` strings of the parts of type `kind` in a list of content parts."""
    if type(parts) is not list:
        return []
    return [
        part[key]
        for part in parts
        if isinstance(part, Mapping) and part.get("type") == kind and isinstance(part.get(key), str)
    ]


def _joined(parts: Any, kind: str, key: str) -> str:
    return "".join(part_texts(parts, kind, key))


def reduce_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """One output item in the reduced shape of a recording's `final`."""
    kind = item.get("type")
    if kind == "message":
        reduced: dict[str, Any] = {
            "type": kind,
            "role": item.get("role", "assistant"),
            "text": _joined(item.get("content"), "output_text", "text"),
        }
        refusal = _joined(item.get("content"), "refusal", "refusal")
        if refusal:
            reduced["refusal"] = refusal
        return reduced
    if kind == "function_call":
        return {
            "type": kind,
            "call_id": item.get("call_id"),
            "name": item.get("name"),
            "arguments": item.get("arguments"),
        }
    if kind == "reasoning":
        return {"type": kind, "summary_text": _joined(item.get("summary"), "summary_text", "text")}
    return {"type": kind, "id": item.get("id")}


def reduce_output(output: AssembledResponsesOutput) -> dict[str, Any]:
    """`{"status", "output", "usage", "errors"}`: the replay document of a Responses stream.

    `output` has one entry per item, in the reduced shape of the recordings' `final`:
    `message` → `{type, role, text}` (plus `refusal` when there is one), `function_call`
    → `{type, call_id, name, arguments}`, `reasoning` → `{type, summary_text}`, any
    other item → `{type, id}`.
    """
    return {
        "status": output.status,
        "output": [reduce_item(item) for item in output.items],
        "usage": dict(output.usage) if output.usage is not None else None,
        "errors": list(output.errors),
    }
