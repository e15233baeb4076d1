"""A `Reply` as Chat Completions chunk dicts or a whole completion, in each dialect (no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ._reply import Reply

__all__ = ["Stamp", "completion", "default_usage", "pieces", "stream_chunks", "words"]

_WORD = re.compile(r"\s*\S+|\s+")


@dataclass(frozen=True, slots=True)
class Stamp:
    """What differs between two answers made from the same reply."""

    completion_id: str
    created: int
    model: str
    call_ids: tuple[str, ...]


def words(text: str) -> list[str]:
    """Split text into words, each keeping the whitespace before it."""
    return _WORD.findall(text)


def pieces(text: str, size: int) -> list[str]:
    """Split text into pieces of `size` characters."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def _tokens(chars: int) -> int:
    return (chars + 3) // 4


def default_usage(reply: Reply, prompt_bytes: int) -> dict[str, Any]:
    """Plausible token counts (about four characters a token) in `reply.dialect`'s shape."""
    reasoning = _tokens(len(reply.reasoning or ""))
    chars = len(reply.text or "") + len(reply.refusal or "")
    chars += sum(len(c.name) + len(c.arguments_json) for c in reply.tool_calls)
    prompt = _tokens(prompt_bytes)
    completion_tokens = _tokens(chars) + reasoning
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }
    if reply.dialect == "openai":
        usage["prompt_tokens_details"] = {"cached_tokens": 0}
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


def _finish_reason(reply: Reply) -> str:
    if reply.finish_reason is not None:
        return reply.finish_reason
    if reply.tool_calls and reply.dialect != "ollama":
        return "tool_calls"
    return "stop"


def _whole_calls(reply: Reply, stamp: Stamp, *, typed: bool) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for call, call_id in zip(reply.tool_calls, stamp.call_ids, strict=True):
        whole: dict[str, Any] = {"id": call_id}
        if typed:
            whole["type"] = "function"
        whole["function"] = {"name": call.name, "arguments": call.arguments_json}
        calls.append(whole)
    return calls


def stream_chunks(
    reply: Reply, stamp: Stamp, usage: dict[str, Any], *, include_usage: bool
) -> list[dict[str, Any]]:
    """The chunks a server of `reply.dialect` would stream for `reply`."""
    if reply.dialect == "mistral":
        return _mistral(reply, stamp, usage)
    if reply.dialect == "ollama":
        return _ollama(reply, stamp)
    return _openai(reply, stamp, usage if include_usage else None)


def _openai(reply: Reply, stamp: Stamp, usage: dict[str, Any] | None) -> list[dict[str, Any]]:
    head = {
        "id": stamp.completion_id,
        "object": "chat.completion.chunk",
        "created": stamp.created,
        "model": stamp.model,
        "system_fingerprint": "fp_scripted",
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**head, "choices": [choice]}

    content = None if reply.text is None and (reply.tool_calls or reply.refusal) else ""
    first: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if reply.refusal is not None:
        first["refusal"] = ""
    out = [chunk(first)]
    out += [chunk({"reasoning_content": w}) for w in words(reply.reasoning or "")]
    out += [chunk({"content": w}) for w in words(reply.text or "")]
    out += [chunk({"refusal": w}) for w in words(reply.refusal or "")]
    for index, (call, call_id) in enumerate(zip(reply.tool_calls, stamp.call_ids, strict=True)):
        function = {"name": call.name, "arguments": ""}
        header = {"index": index, "id": call_id, "type": "function", "function": function}
        out.append(chunk({"tool_calls": [header]}))
        for piece in pieces(call.arguments_json, reply.piece_size):
            fragment = {"index": index, "function": {"arguments": piece}}
            out.append(chunk({"tool_calls": [fragment]}))
    out.append(chunk({}, _finish_reason(reply)))
    if usage is not None:
        out.append({**head, "choices": [], "usage": usage})
    return out


def _mistral(reply: Reply, stamp: Stamp, usage: dict[str, Any]) -> list[dict[str, Any]]:
    head = {
        "id": stamp.completion_id.removeprefix("chatcmpl-"),
        "object": "chat.completion.chunk",
        "created": stamp.created,
        "model": stamp.model,
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"reasoning_content": w}) for w in words(reply.reasoning or "")]
    out += [chunk({"content": w}) for w in words(reply.text or "")]
    out += [chunk({"refusal": w}) for w in words(reply.refusal or "")]
    # Mistral sends every call whole, in the finish chunk, and usage with it.
    last: dict[str, Any] = {"content": ""}
    if reply.tool_calls:
        last = {"tool_calls": _whole_calls(reply, stamp, typed=False)}
    out.append({**chunk(last, _finish_reason(reply)), "usage": usage})
    return out


def _ollama(reply: Reply, stamp: Stamp) -> list[dict[str, Any]]:
    head = {
        "id": stamp.completion_id,
        "object": "chat.completion.chunk",
        "created": stamp.created,
        "model": stamp.model,
        "system_fingerprint": "fp_ollama",
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        # Ollama repeats the role on every delta.
        delta = {"role": "assistant", "content": "", **delta}
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    out = [chunk({"reasoning_content": w}) for w in words(reply.reasoning or "")]
    out += [chunk({"content": w}) for w in words(reply.text or "")]
    out += [chunk({"refusal": w}) for w in words(reply.refusal or "")]
    if reply.tool_calls:
        out.append(chunk({"tool_calls": _whole_calls(reply, stamp, typed=True)}))
    out.append(chunk({}, _finish_reason(reply)))
    return out


def completion(reply: Reply, stamp: Stamp, usage: dict[str, Any]) -> dict[str, Any]:
    """The `chat.completion` object a non-streaming request gets for `reply`."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": reply.refusal}
    if reply.reasoning is not None:
        message["reasoning_content"] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = _whole_calls(reply, stamp, typed=True)
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": _finish_reason(reply),
    }
    return {
        "id": stamp.completion_id,
        "object": "chat.completion",
        "created": stamp.created,
        "model": stamp.model,
        "system_fingerprint": "fp_scripted",
        "choices": [choice],
        "usage": usage,
    }
