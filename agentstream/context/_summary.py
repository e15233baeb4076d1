"""The summary request's messages, and a server's "context length exceeded" (no I/O)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from .._exceptions import ModelError, RunError, StreamError
from ._compact import content_text

__all__ = ["summary_request", "too_long"]

# Request fields of the agent that make no sense for a summary (it offers no tools and
# asks for plain text) or that the summary request sets itself.
_NOT_FOR_SUMMARY = frozenset(
    {
        "tools", "tool_choice", "parallel_tool_calls", "response_format", "text",
        "stream_options", "context_management", "previous_response_id", "background",
        "messages", "input", "instructions", "max_tool_calls",
    }
)  # fmt: skip

# Words servers use when a request does not fit the model's context window.
_TOO_LONG = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "prompt is too long",
    "input is too long",
    "too many tokens",
    "reduce the length of the messages",
    "exceeds the maximum number of tokens",
)


def summary_request(
    request: Mapping[str, Any],
    prompt: str,
    earlier: str | None,
    messages: list[dict[str, Any]],
    share: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The agent's request fields fit for a summary, and its conversation: `prompt` as
    instructions, then the turns (and the `earlier` summary they follow) as one text,
    each cut to `share` characters if given."""
    fields = {key: value for key, value in request.items() if key not in _NOT_FOR_SUMMARY}
    lines: list[str] = []
    if earlier:
        lines.append(f"(summary of what came before)\n{earlier}")
    for message in messages:
        line = _line(message)
        if share is not None and len(line) > share:
            line = f"{line[:share]} [... {len(line) - share} characters cut]"
        lines.append(line)
    transcript = "\n\n".join(lines)
    conversation = [
        {"role": "system", "content": prompt},
        {"role": "user", "content": f"The conversation to summarise:\n\n{transcript}"},
    ]
    return fields, conversation


def _line(message: Mapping[str, Any]) -> str:
    role = str(message.get("role"))
    text = content_text(message.get("content"))
    if role == "tool":
        return f"tool result ({message.get('tool_call_id')}): {text}"
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            name, arguments = function.get("name"), function.get("arguments")
            calls.append(f"[called {name} ({call.get('id')}) with {arguments}]")
    return f"{role}: {' '.join([text, *calls]).strip()}"


def too_long(exc: RunError) -> bool:
    """Whether the server refused the request as longer than the model's context."""
    if isinstance(exc, ModelError):
        if exc.status_code not in (None, 400, 413, 422):
            return False
        body: Any = exc.body
        found = exc.message
    elif isinstance(exc, StreamError):
        body, found = exc.body, exc.message
    else:
        return False
    with contextlib.suppress(TypeError, ValueError, RecursionError):
        found += " " + json.dumps(body, default=str)
    found = found.lower()
    return any(words in found for words in _TOO_LONG)
