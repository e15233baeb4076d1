"""A run's conversation as a Responses API request (no I/O).

The conversation stays OpenAI chat message dicts in the run's state (readable, and
serialisable as it is); each request turns it into `instructions` and `input` items:
the first system message becomes `instructions`, user and assistant text become
message items, an assistant's `tool_calls` become `function_call` items and tool
messages `function_call_output` items, both by `call_id`.

What the Responses API needs beyond the chat shape rides on the assistant message
under the private key `CARRIED` (stripped from chat requests; see `_carry`):
the response's id, its output items in order where reasoning or a message's `phase`
must go back, and the server's own call ids where the loop gave a call a fresh one
(servers that count `call_0` in every reply). The conversation uses the
fresh ids, unique in the run; with `previous_response_id` the server only knows its
own, so tool outputs are sent under those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._media import responses_output
from ._carry import CARRIED, assistant_items, carried, content_text

__all__ = [
    "CARRIED",
    "carried",
    "chat_messages",
    "responses_input",
    "responses_params",
    "responses_tools",
]


def chat_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`messages` for a Chat Completions request: without the Responses API's key.

    The same list when no message carries it (the common case costs one scan).
    """
    for message in messages:  # a loop: a generator costs a call per message
        if CARRIED in message:
            break
    else:
        return messages
    return [
        {key: value for key, value in message.items() if key != CARRIED}
        if CARRIED in message
        else message
        for message in messages
    ]


def _parts(content: Any) -> Any:
    """Chat content parts as Responses input parts (text and images); a string as is."""
    if not isinstance(content, list):
        return content
    parts: list[Any] = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            parts.append({"type": "input_text", "text": part.get("text", "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            parts.append({"type": "input_image", "image_url": url, "detail": "auto"})
        else:
            parts.append(part)
    return parts


def responses_input(
    messages: Sequence[Mapping[str, Any]], *, chain: bool = False
) -> tuple[str | None, list[dict[str, Any]], str | None]:
    """`(instructions, input items, previous_response_id)` for a conversation.

    With `chain`, the input starts after the last assistant message that has a
    response id, which is then `previous_response_id`, and tool outputs go under the
    server's own call ids.
    """
    start, previous, renamed = 0, None, {}
    if chain:
        for position in range(len(messages) - 1, -1, -1):
            extra = messages[position].get(CARRIED)
            if isinstance(extra, Mapping) and isinstance(extra.get("response_id"), str):
                start, previous = position + 1, extra["response_id"]
                renamed = dict(extra.get("call_ids") or {})
                break
    instructions = None
    first = messages[0] if messages else {}
    if first.get("role") == "system" and isinstance(first.get("content"), str):
        instructions = first["content"]  # sent with every request, chained or not
        start = max(start, 1)
    items: list[dict[str, Any]] = []
    for position in range(start, len(messages)):
        message = messages[position]
        role = message.get("role")
        content = message.get("content")
        if role == "tool":
            call_id = message.get("tool_call_id")
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": renamed.get(call_id, call_id),
                    "output": responses_output(content) or content_text(content),
                }
            )
        elif role == "assistant":
            items.extend(assistant_items(message, previous is None))
        else:
            items.append({"type": "message", "role": role, "content": _parts(content)})
    return instructions, items, previous


def responses_tools(definitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat tool definitions in the Responses API's function format."""
    tools = []
    for definition in definitions:
        function = definition["function"]
        tools.append(
            {
                "type": "function",
                "name": function["name"],
                "description": function.get("description") or "",
                "parameters": function.get("parameters") or {"type": "object"},
                "strict": bool(function.get("strict", False)),
            }
        )
    return tools


def responses_params(
    request: Mapping[str, Any],
    messages: Sequence[Mapping[str, Any]],
    *,
    model: str,
    definitions: list[dict[str, Any]],
    extra_step: bool,
    chain: bool,
    background: bool,
    tool_choice: Any = None,
    more_instructions: str | None = None,
) -> dict[str, Any]:
    """The body of one Responses API request of a run: instructions, input, tools.

    Stateless by default (`store: false`, reasoning sent back encrypted); with `chain`
    (the agent's `chain_responses`), `previous_response_id` and only the new items.
    `definitions` are the Chat Completions tool definitions, reshaped here.
    `extra_step`: the step after a limit, which may only answer (`tool_choice: none`).
    `tool_choice` and `more_instructions`: one step's own (see `Agent(prepare_step=...)`):
    the choice in the Responses shape, and text added after the instructions.
    """
    instructions, items, previous = responses_input(messages, chain=chain)
    params: dict[str, Any] = {**request, "model": model, "input": items, "stream": True}
    if more_instructions:
        instructions = (
            f"{instructions}\n\n{more_instructions}" if instructions else more_instructions
        )
    if instructions is not None:
        params["instructions"] = instructions
    if previous is not None:
        params["previous_response_id"] = previous
    if background:
        # The server keeps a background response for a while whatever `store` says
        # (the recorded ones ran with `store: false`), so it can be streamed again.
        params["background"] = True
    params.setdefault("store", chain)
    if params["store"] is False:
        include = list(params.get("include") or ())
        if "reasoning.encrypted_content" not in include:
            params["include"] = [*include, "reasoning.encrypted_content"]
    if definitions:
        params["tools"] = responses_tools(definitions)
        if extra_step:
            params["tool_choice"] = "none"
        elif tool_choice is not None:
            params["tool_choice"] = tool_choice
    return params
