"""What the Responses API needs from one turn to the next, and how it goes back (no I/O).

The run's conversation stays chat messages; what the Responses API needs beyond
them rides on the assistant message under the private key `CARRIED`: the response's
id, the server's own call ids where the loop gave a call a fresh one, and, when the
turn had something a chat message cannot hold, its output items in order:

- reasoning items with `encrypted_content` (OpenAI, `store: false`) or with their
  own text (`content[].reasoning_text`, DeepSeek), whole as they came (less `status`
  and null fields), each placed before the item that followed it;
- `compaction` items (the server's own compaction, `context_management`), whole;
- a reference to each `message` item (its `id`, its `phase`: `commentary` or
  `final_answer`; its text only when the turn had several messages);
- a reference to each `function_call` item (its `id`, the call's id in the conversation).

Sent back statelessly, a turn with replayed reasoning goes back item for item, ids
included: a `function_call` or `message` sent with its `id` must come with the
reasoning item before it. Without replayed reasoning (chained turns, or none was
streamed), items go back without ids, as plain input. Nothing is added that the
stream did not contain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .._message import AssembledMessage
from ._output import AssembledResponsesOutput, part_texts

__all__ = ["CARRIED", "assistant_items", "carried", "content_text"]

CARRIED = "responses"
"""The key, on an assistant message, of what the Responses API carries between turns."""

_WHOLE = frozenset({"reasoning", "compaction"})  # items that go back whole, statelessly


def _replayable(item: Mapping[str, Any]) -> bool:
    """A reasoning item the next stateless request can take back: it carries itself
    (encrypted, or its text); a bare id means nothing to a server that kept nothing."""
    if item.get("encrypted_content"):
        return True
    return any(part_texts(item.get("content"), "reasoning_text", "text"))


def _whole(item: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key != "status" and value is not None}


def _items(output: AssembledResponsesOutput, message: AssembledMessage) -> list[dict[str, Any]]:
    """The turn's output items, reduced to what the chat message does not hold."""
    fresh = iter(call.id for call in message.tool_calls)
    several = sum(item.get("type") == "message" for item in output.items) > 1
    items: list[dict[str, Any]] = []
    for item in output.items:
        kind = item.get("type")
        item_id = item.get("id")
        ref: dict[str, Any] = {"type": kind}
        if isinstance(item_id, str) and item_id:
            ref["id"] = item_id
        if kind == "reasoning":
            if _replayable(item):
                items.append(_whole(item))
        elif kind == "compaction":  # the server's own summary of the turns before it
            if item.get("encrypted_content"):
                items.append(_whole(item))
        elif kind == "message":
            if isinstance(item.get("phase"), str):
                ref["phase"] = item["phase"]
            if several:
                ref["text"] = "".join(part_texts(item.get("content"), "output_text", "text"))
            items.append(ref)
        elif kind == "function_call":
            ref["call_id"] = next(fresh, None)
            items.append(ref)
    return items


def carried(output: AssembledResponsesOutput, message: AssembledMessage) -> dict[str, Any]:
    """What to keep of `output` on its assistant message (`message`: its fresh ids)."""
    data: dict[str, Any] = {}
    if output.id is not None:
        data["response_id"] = output.id
    items = _items(output, message)
    # Only when they tell more than the chat message: reasoning, compaction, or a phase.
    if any(item["type"] in _WHOLE or "phase" in item for item in items):
        data["items"] = items
    renamed = {
        fresh.id: sent.id
        for fresh, sent in zip(message.tool_calls, output.message.tool_calls, strict=True)
        if fresh.id != sent.id
    }
    if renamed:
        data["call_ids"] = renamed
    return data


def content_text(content: Any) -> str:
    """The text of a chat message's content, a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


def _call_item(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    return {
        "type": "function_call",
        "call_id": call.get("id"),
        "name": function.get("name") or "",
        "arguments": function.get("arguments") or "",
    }


def _message_item(text: str, ref: Mapping[str, Any], with_id: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "message", "role": "assistant", "content": text}
    if with_id and isinstance(ref.get("id"), str):
        item["id"] = ref["id"]
    if isinstance(ref.get("phase"), str):
        item["phase"] = ref["phase"]
    return item


def _in_order(
    message: Mapping[str, Any], refs: list[Any], stateless: bool
) -> Iterator[dict[str, Any]]:
    """The turn's items in the order they came (see the module's docs)."""
    calls = list(message.get("tool_calls") or ())
    by_id = {call.get("id"): call for call in calls}
    sent: set[int] = set()
    replayed = stateless and any(ref.get("type") == "reasoning" for ref in refs)
    content = content_text(message.get("content"))
    for ref in refs:
        kind = ref.get("type")
        if kind in _WHOLE:
            if stateless:
                yield dict(ref)
        elif kind == "message":
            text = ref.get("text") if isinstance(ref.get("text"), str) else content
            if text:
                yield _message_item(text, ref, replayed)
        elif kind == "function_call":
            call = by_id.get(ref.get("call_id"))
            if call is None or id(call) in sent:
                continue
            sent.add(id(call))
            item = _call_item(call)
            if replayed and isinstance(ref.get("id"), str):
                item["id"] = ref["id"]
            yield item
    for call in calls:  # any call the references do not name (never dropped)
        if id(call) not in sent:
            yield _call_item(call)


def assistant_items(message: Mapping[str, Any], stateless: bool) -> list[dict[str, Any]]:
    """An assistant message of the conversation as Responses input items.

    `stateless`: the server keeps nothing (no `previous_response_id`), so reasoning
    goes back with the items it preceded.
    """
    extra = message.get(CARRIED)
    refs = extra.get("items") if isinstance(extra, Mapping) else None
    if isinstance(refs, list) and all(isinstance(ref, Mapping) for ref in refs):
        return list(_in_order(message, refs, stateless))
    items: list[dict[str, Any]] = []
    if stateless and isinstance(extra, Mapping):
        # Saved before items were kept in order: its encrypted reasoning, first.
        items.extend(dict(item) for item in extra.get("reasoning") or ())
    content = content_text(message.get("content"))
    if content:
        items.append({"type": "message", "role": "assistant", "content": content})
    items.extend(_call_item(call) for call in message.get("tool_calls") or ())
    return items
