"""How the offline model answers a request for typed output (no I/O).

A request asks for typed output with `response_format` (`json_schema`; on the
Responses API `text.format`) or by offering
the final-answer tool (`agentstream.FINAL_TOOL`). The answer is a value built from the
schema by the same rules as tool arguments (places, people, numbers, dates, enums from
the question; placeholders for the rest), sent as the text or as the tool's arguments.

Faults, per request, in the `x-agentstream-output` header:

- `invalid`: the first typed answer has a field of the wrong type (the corrected one
  follows once the model has been told);
- `not_json`: the first typed answer is cut in the middle of its JSON;
- `refuse`: a refusal instead of an answer;
- `no_response_format`: answer HTTP 400 to a request with `response_format`, as servers
  that accept tools but not `response_format` do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._arguments import arguments
from ._reply import Fault, Reply, ToolCall
from ._schemas import resolve, schema_properties
from ._text import Message

__all__ = [
    "FEEDBACK",
    "FINAL_TOOL",
    "OUTPUT_HEADER",
    "TypedAsk",
    "output_fault",
    "typed_answer",
    "typed_ask",
]

# The test kit reads requests as any server would, never through the core's imports;
# a test checks that these match the agent's own (`agentstream.FINAL_TOOL`, ...).
FINAL_TOOL = "final_result"
"""The name of the final-answer tool the agent offers in its tool mode."""
OUTPUT_HEADER = "x-agentstream-output"
FEEDBACK = "Invalid output:"
"""How the agent loop begins the message telling the model its typed answer was wrong."""
_FAULTS = ("invalid", "not_json", "refuse", "no_response_format")
_REFUSAL = "I'm sorry, but I can't help with that request."
_INVALID_CALL = f"Invalid tool call: {FINAL_TOOL}:"


@dataclass(frozen=True, slots=True)
class TypedAsk:
    """How a request asks for typed output, and the schema of the answer."""

    by: Literal["response_format", "tool"]
    schema: dict[str, Any]


def typed_ask(body: Mapping[str, Any]) -> TypedAsk | None:
    """The typed output a chat completion request asks for, if any."""
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") == "json_schema":
        json_schema = response_format.get("json_schema")
        schema = json_schema.get("schema") if isinstance(json_schema, Mapping) else None
        return TypedAsk("response_format", dict(schema) if isinstance(schema, Mapping) else {})
    text_format = _text_format(body)
    if text_format is not None:  # the Responses API's twin of `response_format`
        schema = text_format.get("schema")
        return TypedAsk("response_format", dict(schema) if isinstance(schema, Mapping) else {})
    for entry in body.get("tools") or ():
        function = entry.get("function") if isinstance(entry, Mapping) else None
        if function is None and isinstance(entry, Mapping) and "name" in entry:
            function = entry  # a Responses API function tool: its fields at the top
        if isinstance(function, Mapping) and function.get("name") == FINAL_TOOL:
            parameters = function.get("parameters")
            return TypedAsk("tool", dict(parameters) if isinstance(parameters, Mapping) else {})
    return None


def output_fault(headers: Mapping[str, str], body: Mapping[str, Any]) -> str | Reply | None:
    """The typed-output fault a request asks for; a `Reply` when it is answered at once.

    Raises `ValueError` for a header it cannot read.
    """
    raw = headers.get(OUTPUT_HEADER)
    if raw is None or not raw.strip():
        return None
    fault = raw.strip().lower()
    if fault not in _FAULTS:
        raise ValueError(f"{OUTPUT_HEADER} must be one of {', '.join(_FAULTS)}, not {fault!r}")
    if fault == "no_response_format" and _text_format(body) is not None:
        message = "text.format json_schema is not supported by this server; use tools instead"
        return Reply(fault=Fault(status=400, message=message))
    if fault == "no_response_format" and "response_format" in body:
        message = "response_format is not supported by this server; use tools instead"
        return Reply(fault=Fault(status=400, message=message))
    return fault


def _text_format(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A Responses request's `text.format` when it asks for a JSON schema."""
    text = body.get("text")
    found = text.get("format") if isinstance(text, Mapping) else None
    if isinstance(found, Mapping) and found.get("type") == "json_schema":
        return found
    return None


def typed_answer(ask: TypedAsk, message: Message, after: Sequence[Any], fault: str | None) -> Reply:
    """The typed answer to `message`; `after`: the messages since the question."""
    if fault == "refuse":
        return Reply(refusal=_REFUSAL)
    places = [entity for entity in message.entities if entity.is_place]
    people = [entity for entity in message.entities if not entity.is_place]
    value = arguments(ask.schema, message, places, people)
    text = json.dumps(value, ensure_ascii=False)
    if fault in ("invalid", "not_json") and not _was_told(after):
        text = text[: len(text) // 2] if fault == "not_json" else _wrong(ask.schema, value)
    if ask.by == "tool":
        return Reply(tool_calls=[ToolCall(FINAL_TOOL, text)])
    return Reply(text)


def _was_told(after: Sequence[Any]) -> bool:
    """Whether the model has already been told that a typed answer of its was wrong."""
    for item in after:
        content = item.get("content") if isinstance(item, Mapping) else None
        if isinstance(content, str) and content.startswith((FEEDBACK, _INVALID_CALL)):
            return True
    return False


def _wrong(schema: dict[str, Any], value: dict[str, Any]) -> str:
    """`value` with its first field of the wrong type."""
    wrong = dict(value)
    for name, prop in schema_properties(schema, schema).items():
        kind = resolve(prop, schema)[0].get("type")
        wrong[name] = "not an object" if kind == "object" else {"unexpected": "object"}
        break
    return json.dumps(wrong, ensure_ascii=False)
