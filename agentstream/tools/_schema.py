"""Describing a tool's arguments to the model and checking what it sends back.

Schemas come from a function's parameters (through a pydantic model), from a single
pydantic model, or from a hand-written JSON schema; each comes with a `Check` that turns
parsed arguments into what the tool receives. Also: OpenAI strict mode, and error text
written for the model.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

import jsonschema  # type: ignore[import-untyped]
from pydantic import (
    BaseModel,
    ConfigDict,
    PydanticUserError,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaWarningKind

from .._exceptions import ToolArgumentsError, ToolDefinitionError

__all__ = [
    "ERROR_TEXT_LIMIT",
    "Check",
    "join_errors",
    "model_arguments",
    "parse_arguments",
    "raw_arguments",
    "signature_arguments",
    "strict_arguments",
    "strict_nulls",
    "tool_schema",
]

ERROR_TEXT_LIMIT = 600
"""Error text sent back to the model stops after about this many characters."""

Check = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns parsed arguments into the tool's arguments, or raises `ToolArgumentsError`."""

# What pydantic raises for a type it cannot turn into a validator or a JSON schema.
_SCHEMA_ERRORS = (PydanticUserError, TypeError, ValueError, NameError)
# Keywords that describe a schema without constraining it; kept outside a nullable wrapper.
_ANNOTATIONS = ("title", "description", "examples", "deprecated")
_UNIONS = ("anyOf", "oneOf", "allOf")


class _ToolSchemaGenerator(GenerateJsonSchema):
    """Pydantic's generator without the titles it derives from field names.

    A title like "City" for the property `city` costs tokens and tells the model nothing.
    """

    def field_title_should_be_set(self, schema: object) -> bool:
        return False

    def render_warning_message(self, kind: JsonSchemaWarningKind, detail: str) -> str | None:
        # A default that cannot be shown in JSON is simply left out of the schema.
        if kind == "non-serializable-default":
            return None
        return super().render_warning_message(kind, detail)


def signature_arguments(
    fields: Mapping[str, tuple[Any, Any]], docs: Mapping[str, str], label: str
) -> tuple[dict[str, Any], Check]:
    """Schema and check for parameters given as name -> (type hint, default or `empty`).

    `docs` gives descriptions for properties that have none from `Field(description=...)`.
    """
    # Fields get neutral names and take the parameter names as aliases, so a parameter
    # may be called `json`, `schema` or `_x` without clashing with BaseModel. Unknown
    # arguments are ignored, as the schema (no `additionalProperties: false`) allows.
    aliases = {f"p{i}": param for i, param in enumerate(fields)}
    definitions: dict[str, Any] = {
        field: (hint, ... if default is inspect.Parameter.empty else default)
        for field, (hint, default) in zip(aliases, fields.values(), strict=True)
    }
    try:
        model: type[BaseModel] = create_model(
            "Arguments", __config__=ConfigDict(alias_generator=aliases.__getitem__), **definitions
        )
        schema = _model_schema(model)
    except _SCHEMA_ERRORS as exc:
        _raise_unschemable(fields, label, exc)
    properties = schema.setdefault("properties", {})
    for field, param in aliases.items():
        key = model.model_fields[field].alias or param
        if param in docs and key in properties:
            properties[key].setdefault("description", docs[param])

    def check(data: dict[str, Any]) -> dict[str, Any]:
        try:
            instance = model.model_validate(data)
        except ValidationError as exc:
            raise ToolArgumentsError(_pydantic_error_text(exc)) from exc
        return {param: getattr(instance, field) for field, param in aliases.items()}

    return schema, check


def model_arguments(model: type[BaseModel], param: str, label: str) -> tuple[dict[str, Any], Check]:
    """Schema and check for a function whose one parameter `param` is the model `model`."""
    try:
        schema = _model_schema(model)
    except _SCHEMA_ERRORS as exc:
        _raise_unschemable({param: (model, None)}, label, exc)

    def check(data: dict[str, Any]) -> dict[str, Any]:
        try:
            return {param: model.model_validate(data)}
        except ValidationError as exc:
            raise ToolArgumentsError(_pydantic_error_text(exc)) from exc

    return schema, check


def raw_arguments(schema: dict[str, Any], label: str) -> Check:
    """The check for a hand-written schema, which is first checked against its metaschema.

    The draft follows the schema's `$schema`, defaulting to 2020-12.
    """
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path)
        raise ToolDefinitionError(
            f"invalid JSON schema for {label}: {exc.message}" + (f" (at /{where})" if where else "")
        ) from None
    validator = cls(schema)

    def check(data: dict[str, Any]) -> dict[str, Any]:
        errors = list(validator.iter_errors(data))
        if errors:
            raise ToolArgumentsError(_jsonschema_error_text(errors))
        return data

    return check


def parse_arguments(arguments: str | Mapping[str, Any]) -> dict[str, Any]:
    """The arguments as a new dict: JSON text parsed (blank means `{}`), objects only."""
    data: Any = arguments
    if isinstance(arguments, str):
        try:
            data = (
                json.loads(arguments, parse_constant=_reject_constant) if arguments.strip() else {}
            )
        except json.JSONDecodeError as exc:
            message = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
            raise ToolArgumentsError(f"arguments are not valid JSON: {message}") from None
        except (ValueError, RecursionError) as exc:
            message = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
            raise ToolArgumentsError(f"arguments are not valid JSON: {message}") from None
    if not isinstance(data, Mapping):
        raise ToolArgumentsError(f"arguments must be a JSON object, got {_json_type(data)}")
    return dict(data)


def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of `model` as a tool's parameters: no generated titles, `type` first."""
    schema = model.model_json_schema(schema_generator=_ToolSchemaGenerator)
    schema.pop("title", None)
    return _ordered(schema)


def tool_schema(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    """The JSON schema of any type as a model reads it: `title` kept at the root only."""
    schema = adapter.json_schema(schema_generator=_ToolSchemaGenerator)
    title = schema.pop("title", None)
    ordered = _ordered(schema)
    return {"title": title, **ordered} if isinstance(title, str) else ordered


def _ordered(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with `type` and its main keywords first, `$defs` last, no `$defs` titles."""
    for name, definition in schema.get("$defs", {}).items():
        if definition.get("title") == name:
            del definition["title"]
    first = ("type", "description", "properties", "required", "additionalProperties")
    ordered = {key: schema.pop(key) for key in first if key in schema}
    defs = schema.pop("$defs", None)
    ordered.update(schema)
    if defs is not None:
        ordered["$defs"] = defs
    return ordered


def _raise_unschemable(
    fields: Mapping[str, tuple[Any, Any]], label: str, error: Exception
) -> NoReturn:
    # Pydantic's error does not say which parameter it choked on: find it.
    for param, (hint, _) in fields.items():
        try:
            TypeAdapter(hint).json_schema()
        except _SCHEMA_ERRORS as exc:
            raise ToolDefinitionError(
                f"parameter {param!r} of {label} has type {_type_name(hint)}, which cannot "
                f"be expressed as JSON schema: {_first_sentence(exc)}"
            ) from exc
    raise ToolDefinitionError(
        f"cannot build a JSON schema for {label}: {_first_sentence(error)}"
    ) from error


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not allowed")


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    return "null" if value is None else type(value).__name__


def _type_name(hint: Any) -> str:
    return hint.__qualname__ if isinstance(hint, type) else repr(hint).replace("typing.", "")


def _first_sentence(exc: BaseException) -> str:
    # Pydantic's messages go on with advice and a URL that mean nothing here.
    line = str(exc).strip().split("\n", 1)[0]
    return line.split(". ", 1)[0].rstrip(".")


# --- strict mode -------------------------------------------------------------------------


def strict_arguments(
    schema: Mapping[str, Any], check: Check, label: str
) -> tuple[dict[str, Any], Check]:
    """An OpenAI strict-mode copy of `schema`, and `check` adapted to it.

    Every object lists all its properties in `required` and forbids others; a property
    that was optional becomes nullable, and the adapted check treats its `null` as absent
    so the default applies; `default` keywords go. An object whose keys are not known in
    advance (a `dict[str, ...]`) cannot be expressed: `ToolDefinitionError`.
    """
    root = copy.deepcopy(dict(schema))
    try:
        strict = _strict(root, root, "")
    except ValueError as exc:
        raise ToolDefinitionError(f"{label}: {exc}") from None
    if "$defs" in strict:
        strict["$defs"] = strict.pop("$defs")  # keep the definitions last, for readers
    original = copy.deepcopy(dict(schema))

    def strict_check(data: dict[str, Any]) -> dict[str, Any]:
        return check(_drop(copy.deepcopy(data), original, original, frozenset()))

    return strict, strict_check


def strict_nulls(schema: Mapping[str, Any]) -> Callable[[Any], Any]:
    """What `strict_arguments`' check does first: drop the `null`s strict mode allowed
    only to stand for a missing property of `schema` (the original one). Mutates."""
    original = copy.deepcopy(dict(schema))
    return lambda data: _drop(data, original, original, frozenset())


def _strict(node: dict[str, Any], root: dict[str, Any], where: str) -> dict[str, Any]:
    node.pop("default", None)
    ref = node.get("$ref")
    if isinstance(ref, str) and len(node) > 1:
        # Strict mode rejects `$ref` next to other keywords, so inline the target.
        target = _resolve(root, ref)
        if target is None:
            raise ValueError(f"cannot resolve $ref {ref!r} at {where or '/'}")
        del node["$ref"]
        node = {**copy.deepcopy(target), **node}
    for key in ("$defs", "definitions"):
        for name, sub in node.get(key, {}).items():
            node[key][name] = _strict(sub, root, f"{where}/{key}/{name}")
    if _is_object(node):
        _strict_object(node, root, where)
    if isinstance(node.get("items"), dict):
        node["items"] = _strict(node["items"], root, f"{where}/items")
    for key in ("prefixItems", *_UNIONS):
        if isinstance(node.get(key), list):
            node[key] = [
                _strict(sub, root, f"{where}/{key}/{i}") if isinstance(sub, dict) else sub
                for i, sub in enumerate(node[key])
            ]
    return node


def _strict_object(node: dict[str, Any], root: dict[str, Any], where: str) -> None:
    extra = node.get("additionalProperties")
    if extra not in (None, False) or ("properties" not in node and extra is None):
        raise ValueError(
            f"strict mode needs every object's properties known in advance, but the object "
            f"at {where or '/'} is free-form (a dict); describe it with a model or use "
            f"strict=False"
        )
    properties: dict[str, Any] = node.setdefault("properties", {})
    required = set(node.get("required", ()))
    for name, sub in properties.items():
        optional = name not in required and not _allows_null(sub, root)
        sub = _strict(sub, root, f"{where}/properties/{name}")
        properties[name] = _nullable(sub) if optional else sub
    node["required"] = list(properties)
    node["additionalProperties"] = False


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    if isinstance(node.get("anyOf"), list):
        node["anyOf"].append({"type": "null"})
        return node
    outer = {key: node.pop(key) for key in _ANNOTATIONS if key in node}
    return {"anyOf": [node, {"type": "null"}], **outer}


def _is_object(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in node


def _resolve(root: Mapping[str, Any], ref: str) -> Mapping[str, Any] | None:
    """The local target of `ref` (`#/...` JSON pointer), or None if it has none."""
    if not ref.startswith("#"):
        return None
    node: Any = root
    for part in ref[1:].split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if isinstance(node, Mapping) else None


def _allows_null(node: Any, root: Mapping[str, Any], _seen: frozenset[str] = frozenset()) -> bool:
    """Whether `null` can be valid under `node`; an unresolvable `$ref` counts as yes."""
    if not isinstance(node, Mapping):
        return node is not False
    kind = node.get("type")
    if kind is not None and "null" not in (kind if isinstance(kind, list) else [kind]):
        return False
    if "enum" in node and None not in node["enum"]:
        return False
    if "const" in node and node["const"] is not None:
        return False
    for key, combine in (("anyOf", any), ("oneOf", any), ("allOf", all)):
        if isinstance(node.get(key), list) and not combine(
            _allows_null(sub, root, _seen) for sub in node[key]
        ):
            return False
    ref = node.get("$ref")
    if isinstance(ref, str):
        if ref in _seen:
            return False
        target = _resolve(root, ref)
        return target is None or _allows_null(target, root, _seen | {ref})
    return True


def _drop(value: Any, node: Any, root: Mapping[str, Any], seen: frozenset[str]) -> Any:
    """Remove `null`s that strict mode allowed only to stand for a missing property.

    `node` is from the original (non-strict) schema: a property that is neither required
    nor nullable there gets `null` from a strict-mode model when it means "use the
    default". Mutates and returns `value`.
    """
    if not isinstance(node, Mapping) or not isinstance(value, (dict, list)):
        return value
    ref = node.get("$ref")
    if isinstance(ref, str) and ref not in seen:
        value = _drop(value, _resolve(root, ref), root, seen | {ref})
    if isinstance(value, dict) and isinstance(node.get("properties"), Mapping):
        properties, required = node["properties"], set(node.get("required", ()))
        for key in [key for key in value if key in properties]:
            if (
                value[key] is None
                and key not in required
                and not _allows_null(properties[key], root)
            ):
                del value[key]
            else:
                value[key] = _drop(value[key], properties[key], root, frozenset())
    if isinstance(value, list):
        prefix = node.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        items = node.get("items")
        for i, item in enumerate(value):
            value[i] = _drop(item, prefix[i] if i < len(prefix) else items, root, frozenset())
    for key in _UNIONS:
        branches = node.get(key)
        if not isinstance(branches, list):
            continue
        fitting = [branch for branch in branches if _may_hold(branch, value, root)]
        # Pruning along a guessed branch could delete what the right branch needs.
        if key == "allOf" or len(fitting) == 1:
            for branch in fitting:
                value = _drop(value, branch, root, seen)
    return value


def _may_hold(node: Any, value: dict[str, Any] | list[Any], root: Mapping[str, Any]) -> bool:
    if not isinstance(node, Mapping):
        return False
    ref = node.get("$ref")
    target = _resolve(root, ref) if isinstance(ref, str) else node
    if target is None:
        return False
    if isinstance(value, dict):
        return _is_object(target)
    kind = target.get("type")
    return kind == "array" or (isinstance(kind, list) and "array" in kind)


# --- error text for the model ------------------------------------------------------------


def _pydantic_error_text(exc: ValidationError) -> str:
    """`loc: msg` for each error, joined and cut to fit."""
    items = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = ".".join(str(part) for part in error["loc"])
        items.append(f"{loc}: {error['msg']}" if loc else error["msg"])
    return join_errors(items)


def _jsonschema_error_text(errors: Iterable[Any]) -> str:
    """`loc: message` for each `jsonschema` error, in document order, joined and cut to fit."""
    ordered = sorted(errors, key=lambda error: [str(part) for part in error.absolute_path])
    items = []
    for error in ordered:
        loc = ".".join(str(part) for part in error.absolute_path)
        items.append(f"{loc}: {error.message}" if loc else str(error.message))
    return join_errors(items)


def join_errors(items: list[str], limit: int = ERROR_TEXT_LIMIT) -> str:
    """Join `items` with "; ", keeping whole items while they fit in about `limit` chars."""
    text = ""
    for i, item in enumerate(items):
        joined = f"{text}; {item}" if text else item
        if len(joined) > limit:
            if not text:
                return item[: limit - 3] + "..."
            rest = len(items) - i
            return f"{text}; and {rest} more error{'s' if rest > 1 else ''}"
        text = joined
    return text
