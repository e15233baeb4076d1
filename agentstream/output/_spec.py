"""Typed final output: the schema asked of the model, and checking what it answers.

An `OutputSpec` is made once per output type (a Pydantic model, a dataclass, a
`TypedDict`, `list[...]`, a union, a plain type) or per hand-written JSON schema. It
knows the schema in every request form (`response_format`, the Responses API's
`text.format`, and the final-answer tool),
validates a whole answer with an error text written for the model, and checks the
entries of a partial answer that are complete so far.

A schema whose root is not an object (a list, a union, a plain type) is wrapped in an
object with one property, `response`, as strict mode and tool arguments need an object.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import jsonschema  # type: ignore[import-untyped]
from pydantic import PydanticUserError, TypeAdapter, ValidationError
from pydantic_core import from_json, to_json

from .._exceptions import SetupError, ToolDefinitionError
from ..tools._schema import join_errors, strict_arguments, strict_nulls, tool_schema

__all__ = ["FINAL_TOOL", "OutputMode", "OutputProblem", "OutputSpec", "output_spec", "schema_spec"]

OutputMode = Literal["auto", "response_format", "tool"]
"""How a typed answer is asked for: see `Agent`."""

FINAL_TOOL = "final_result"
"""The name of the final-answer tool offered in the tool mode."""

_FINAL_DESCRIPTION = (
    "Give your final answer. Call this once you have everything you need; its "
    "arguments are the answer, and it ends the conversation."
)
_WRAP = "response"
_NAME = re.compile(r"[^a-zA-Z0-9_-]")

# One error: where it is (a path into the answer), what failed, pydantic's error type.
Problem = tuple[tuple[str | int, ...], str, str]
# Validates data as sent (wrapped, if so): the value, or the problems.
Check = Callable[[Any], tuple[Any, list[Problem]]]


class OutputProblem(Exception):
    """A whole answer that is not JSON or does not fit the output type.

    `message` is written for the model: what failed and where.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OutputSpec:
    """What a typed answer must be, in the forms a request asks for it."""

    __slots__ = ("_check", "_prepare", "name", "output_type", "schema", "strict", "wrapped")

    def __init__(
        self,
        *,
        name: str,
        schema: dict[str, Any],
        output_type: Any,
        check: Check,
    ) -> None:
        """Internal: use `output_spec()`."""
        self.output_type = output_type
        self.name = _NAME.sub("_", name)[:64] or "output"
        root = dict(schema)
        self.wrapped = root.get("type") != "object"
        if self.wrapped:
            defs = root.pop("$defs", None)
            root = {"type": "object", "properties": {_WRAP: root}, "required": [_WRAP]}
            if defs is not None:
                root["$defs"] = defs
        self._check = check
        self._prepare: Callable[[Any], Any] | None = None
        try:
            strict_schema, _ = strict_arguments(root, lambda data: data, f"output {self.name}")
        except ToolDefinitionError:
            # A free-form dict somewhere: strict mode cannot express it.
            self.schema, self.strict = root, False
        else:
            self.schema, self.strict = strict_schema, True
            if _has_optional(root):
                # Strict mode made optional properties nullable: their nulls mean "absent".
                self._prepare = strict_nulls(root)

    def __repr__(self) -> str:
        return f"OutputSpec(name={self.name!r}, strict={self.strict}, wrapped={self.wrapped})"

    def response_format(self) -> dict[str, Any]:
        """The request's `response_format` asking for this output."""
        json_schema: dict[str, Any] = {"name": self.name, "schema": copy.deepcopy(self.schema)}
        if self.strict:
            json_schema["strict"] = True
        return {"type": "json_schema", "json_schema": json_schema}

    def text_format(self) -> dict[str, Any]:
        """The Responses API's `text.format` asking for this output (`response_format`'s
        twin: the name, schema and strictness sit at the top)."""
        text_format: dict[str, Any] = {
            "type": "json_schema",
            "name": self.name,
            "schema": copy.deepcopy(self.schema),
        }
        if self.strict:
            text_format["strict"] = True
        return text_format

    def tool_definition(self) -> dict[str, Any]:
        """The final-answer tool, whose arguments are the answer."""
        function: dict[str, Any] = {
            "name": FINAL_TOOL,
            "description": _FINAL_DESCRIPTION,
            "parameters": copy.deepcopy(self.schema),
        }
        if self.strict:
            function["strict"] = True
        return {"type": "function", "function": function}

    def unwrap(self, data: Any) -> Any:
        """The answer itself from the data the model sent (the wrapped property, if any)."""
        if self.wrapped:
            return data.get(_WRAP) if isinstance(data, dict) else None
        return data

    def parse(self, text: str) -> Any:
        """The validated value of a whole answer; `OutputProblem` saying what is wrong."""
        try:
            data = json.loads(text) if text.strip() else None
        except ValueError as exc:
            where = (
                f" at line {exc.lineno} column {exc.colno}"
                if isinstance(exc, json.JSONDecodeError)
                else ""
            )
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise OutputProblem(f"the answer is not valid JSON: {reason}{where}") from None
        if not isinstance(data, dict):
            raise OutputProblem("the answer must be a JSON object that fits the schema")
        if self._prepare is not None:
            data = self._prepare(data)  # freshly parsed: nobody else holds it
        value, problems = self._check(data)
        if problems:
            raise OutputProblem(_problem_text(problems, self.wrapped))
        return value

    def invalid_entries(self, entries: Mapping[Any, Any], container: type) -> set[Any]:
        """Which of these complete entries of a partial answer fail validation.

        `entries` are top-level fields (by name) of an object answer, or items (by
        index) of a list answer. Only their own errors count: a field not sent yet is
        no error. An error that cannot be placed marks nothing (the whole answer is
        validated when it is complete).
        """
        if container is dict:
            shaped: Any = dict(entries)
        else:
            shaped = [entries[i] for i in sorted(entries)]
            positions = sorted(entries)
        data = {_WRAP: shaped} if self.wrapped else shaped
        if self._prepare is not None:
            # A copy: the entries are also the partial value the events hand out.
            data = self._prepare(from_json(to_json(data)))
        _, problems = self._check(data)
        bad: set[Any] = set()
        for loc, _, kind in problems:
            path = loc[1:] if self.wrapped else loc
            if not path:
                continue
            if container is dict:
                if kind == "missing" and path[-1] not in entries:
                    continue  # a field still to come
                found = next((p for p in path if isinstance(p, str) and p in entries), None)
                if found is not None:
                    bad.add(found)
            elif isinstance(path[0], int) and 0 <= path[0] < len(positions):
                bad.add(positions[path[0]])
        return bad


def output_spec(output_type: Any) -> OutputSpec:
    """The spec of an output type (anything pydantic can validate and describe).

    Raises `SetupError` when the type has no JSON schema.
    """
    label = getattr(output_type, "__name__", None) or "output"
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(output_type)
        schema = tool_schema(adapter)
    except (PydanticUserError, TypeError, ValueError, NameError) as exc:
        raise SetupError(
            f"output_type {output_type!r} cannot be described as a JSON schema: {exc}"
        ) from exc
    if isinstance(schema.get("title"), str):
        label = schema.pop("title")
    wrapped = schema.get("type") != "object"

    def check(data: Any) -> tuple[Any, list[Problem]]:
        if wrapped:
            if not isinstance(data, dict) or _WRAP not in data:
                return None, [((_WRAP,), "Field required", "missing")]
            data = data[_WRAP]
        try:
            return adapter.validate_python(data), []
        except ValidationError as exc:
            found = exc.errors(include_url=False, include_context=False, include_input=False)
            prefix: tuple[str | int, ...] = (_WRAP,) if wrapped else ()
            return None, [((*prefix, *e["loc"]), e["msg"], e["type"]) for e in found]

    return OutputSpec(name=label, schema=schema, output_type=output_type, check=check)


def schema_spec(schema: Mapping[str, Any], name: str = "output") -> OutputSpec:
    """The spec of a hand-written JSON schema: answers are checked with `jsonschema`.

    The value is the parsed JSON. Raises `SetupError` for a schema that is not valid.
    """
    raw = copy.deepcopy(dict(schema))
    cls = jsonschema.validators.validator_for(raw, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(raw)
    except jsonschema.SchemaError as exc:
        raise SetupError(f"invalid JSON schema for the output: {exc.message}") from None
    title = raw.pop("title", None)
    spec_name = title if isinstance(title, str) else name
    wrapped = raw.get("type") != "object"
    validator = cls(raw)

    def check(data: Any) -> tuple[Any, list[Problem]]:
        if wrapped:
            if not isinstance(data, dict) or _WRAP not in data:
                return None, [((_WRAP,), "Field required", "missing")]
            data = data[_WRAP]
        prefix: tuple[str | int, ...] = (_WRAP,) if wrapped else ()
        found: list[Problem] = []
        for error in validator.iter_errors(data):
            kind = "missing" if error.validator == "required" else str(error.validator)
            loc = (*prefix, *error.absolute_path)
            if kind == "missing":
                missing = re.match(r"'(.+?)' is a required property", error.message)
                loc = (*loc, missing.group(1)) if missing else loc
            found.append((loc, error.message, kind))
        return data, found

    return OutputSpec(name=spec_name, schema=raw, output_type=dict, check=check)


def _has_optional(node: Any) -> bool:
    """Whether some object in the schema has a property it does not require."""
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict) and set(properties) - set(node.get("required", ())):
            return True
        return any(_has_optional(value) for value in node.values())
    if isinstance(node, list):
        return any(_has_optional(value) for value in node)
    return False


def _problem_text(problems: Sequence[Problem], wrapped: bool) -> str:
    items = []
    for loc, message, _ in problems:
        path = loc[1:] if wrapped and loc[:1] == (_WRAP,) and len(loc) > 1 else loc
        where = ".".join(str(part) for part in path)
        items.append(f"{where}: {message}" if where else message)
    return "the answer does not fit the schema: " + join_errors(items)
