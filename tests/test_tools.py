"""Tools: schemas from hints and docstrings, strict mode, raw schemas, validation, invocation."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Annotated, Any, Literal, Optional, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from pydantic import BaseModel, Field

from agentstream import (
    Tool,
    ToolArgumentsError,
    ToolContext,
    ToolDefinitionError,
    ToolError,
    tool,
)
from agentstream.tools._tool import format_tool_result
from agentstream.tools._toolset import build_toolset

CONTEXT = ToolContext(
    run_id="run_1",
    tool_call_id="call_1",
    tool_name="forecast",
    step=2,
    messages=({"role": "user", "content": "Weather in Oslo?"},),
)


class Color(Enum):
    RED = "red"
    GREEN = "green"


class Shade(str, Enum):
    DARK = "dark"


class Address(BaseModel):
    """A postal address."""

    street: str
    city: str
    zip_code: str = ""


class Trip(BaseModel):
    stops: list[Address]
    nights: int = 1
    note: str | None = None


class Query(BaseModel):
    """A search."""

    text: str = Field(description="What to look for.")
    limit: int = 10


class Opaque:
    """A class pydantic knows nothing about."""

    def __str__(self) -> str:
        return "opaque"


@dataclasses.dataclass
class Point:
    x: int
    y: int


def parameters_of(item: Tool) -> dict[str, Any]:
    return item.definition["function"]["parameters"]  # type: ignore[no-any-return]


def description_of(item: Tool) -> str:
    return item.definition["function"]["description"]  # type: ignore[no-any-return]


# --- schemas from type hints -------------------------------------------------------------


def no_params() -> None: ...


def scalars(city: str, days: int, scale: float = 1.5, metric: bool = True) -> None: ...


def optionals(a: int | None, b: int | None = None, c: Optional[str] = None) -> None: ...  # noqa: UP045


def literal(unit: Literal["c", "f"] = "c") -> None: ...


def enum(color: Color) -> None: ...


def nested(name: str, address: Address) -> None: ...


def lists(tags: list[str], stops: list[Address]) -> None: ...


def mappings(weights: dict[str, float]) -> None: ...


def annotated(count: Annotated[int, Field(description="How many.", ge=1)] = 1) -> None: ...


def reserved_names(json: str, schema: int, _private: bool = False) -> None: ...


OPAQUE_DEFAULT: Any = Opaque()


def default_not_json(count: int = OPAQUE_DEFAULT) -> None: ...


ADDRESS_DEF = {
    "description": "A postal address.",
    "properties": {
        "street": {"type": "string"},
        "city": {"type": "string"},
        "zip_code": {"default": "", "type": "string"},
    },
    "required": ["street", "city"],
    "type": "object",
}
INT_OR_NULL = {"anyOf": [{"type": "integer"}, {"type": "null"}]}


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        pytest.param(no_params, {"type": "object", "properties": {}}, id="no-parameters"),
        pytest.param(
            scalars,
            {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "scale": {"default": 1.5, "type": "number"},
                    "metric": {"default": True, "type": "boolean"},
                },
                "required": ["city", "days"],
            },
            id="scalars-and-defaults",
        ),
        pytest.param(
            optionals,
            {
                "type": "object",
                "properties": {
                    "a": INT_OR_NULL,
                    "b": {**INT_OR_NULL, "default": None},
                    "c": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
                },
                "required": ["a"],
            },
            id="optional",
        ),
        pytest.param(
            literal,
            {
                "type": "object",
                "properties": {"unit": {"default": "c", "enum": ["c", "f"], "type": "string"}},
            },
            id="literal",
        ),
        pytest.param(
            enum,
            {
                "type": "object",
                "properties": {"color": {"$ref": "#/$defs/Color"}},
                "required": ["color"],
                "$defs": {"Color": {"enum": ["red", "green"], "type": "string"}},
            },
            id="enum",
        ),
        pytest.param(
            nested,
            {
                "type": "object",
                "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/Address"}},
                "required": ["name", "address"],
                "$defs": {"Address": ADDRESS_DEF},
            },
            id="nested-model",
        ),
        pytest.param(
            lists,
            {
                "type": "object",
                "properties": {
                    "tags": {"items": {"type": "string"}, "type": "array"},
                    "stops": {"items": {"$ref": "#/$defs/Address"}, "type": "array"},
                },
                "required": ["tags", "stops"],
                "$defs": {"Address": ADDRESS_DEF},
            },
            id="lists",
        ),
        pytest.param(
            mappings,
            {
                "type": "object",
                "properties": {
                    "weights": {"additionalProperties": {"type": "number"}, "type": "object"}
                },
                "required": ["weights"],
            },
            id="dict",
        ),
        pytest.param(
            annotated,
            {
                "type": "object",
                "properties": {
                    "count": {
                        "default": 1,
                        "description": "How many.",
                        "minimum": 1,
                        "type": "integer",
                    }
                },
            },
            id="annotated-field",
        ),
        pytest.param(
            reserved_names,
            {
                "type": "object",
                "properties": {
                    "json": {"type": "string"},
                    "schema": {"type": "integer"},
                    "_private": {"default": False, "type": "boolean"},
                },
                "required": ["json", "schema"],
            },
            id="names-basemodel-uses",
        ),
        pytest.param(
            default_not_json,
            {"type": "object", "properties": {"count": {"type": "integer"}}},
            id="default-not-json",
        ),
    ],
)
def test_schema_from_type_hints(function: Callable[..., Any], expected: dict[str, Any]) -> None:
    made = tool(function)
    assert made.parameters == expected
    assert parameters_of(made) == expected
    Draft202012Validator.check_schema(made.parameters)


def test_validate_returns_model_instances_and_defaults() -> None:
    arguments = tool(nested).validate(
        '{"name": "home", "address": {"street": "Main", "city": "Oslo"}}'
    )
    assert arguments == {"name": "home", "address": Address(street="Main", city="Oslo")}
    assert tool(scalars).validate({"city": "Oslo", "days": 2}) == {
        "city": "Oslo",
        "days": 2,
        "scale": 1.5,
        "metric": True,
    }
    assert tool(enum).validate('{"color": "green"}') == {"color": Color.GREEN}


def test_parameter_names_that_clash_with_basemodel_reach_the_function() -> None:
    assert tool(reserved_names).validate('{"json": "a", "schema": 2, "_private": true}') == {
        "json": "a",
        "schema": 2,
        "_private": True,
    }


def test_unknown_arguments_are_ignored() -> None:
    assert tool(literal).validate('{"unit": "f", "colour": "blue"}') == {"unit": "f"}


# --- docstrings --------------------------------------------------------------------------


def google(city: str, days: int = 1) -> None:
    """Get the forecast
    for a city.

    Longer explanation that is not part of the description.

    Args:
        city: The city to look up,
            with its country.
        days (int): How many days.

    Returns:
        The forecast.
    """


def google_arguments(city: str, days: int = 1) -> None:
    """Get the forecast for a city.

    Arguments:
        city: The city to look up, with its country.
        days: How many days.
    """


def sphinx(city: str, days: int = 1) -> None:
    """Get the forecast for a city.

    :param city: The city to look up,
        with its country.
    :param int days: How many days.
    :returns: The forecast.
    """


def numpy(city: str, days: int = 1) -> None:
    """Get the forecast for a city.

    Parameters
    ----------
    city : str
        The city to look up,
        with its country.
    days : int, optional
        How many days.

    Returns
    -------
    str
        The forecast.
    """


@pytest.mark.parametrize(
    "function",
    [
        pytest.param(google, id="google"),
        pytest.param(google_arguments, id="google-arguments-header"),
        pytest.param(sphinx, id="sphinx"),
        pytest.param(numpy, id="numpy"),
    ],
)
def test_docstring_gives_description_and_parameter_descriptions(
    function: Callable[..., Any],
) -> None:
    made = tool(function)
    assert made.description == "Get the forecast for a city."
    assert made.parameters["properties"] == {
        "city": {"type": "string", "description": "The city to look up, with its country."},
        "days": {"default": 1, "type": "integer", "description": "How many days."},
    }


def shared_numpy_entry(low: int, high: int) -> None:
    """Pick a number.

    Parameters
    ----------
    low, high : int
        The bounds.
    """


def field_beats_docstring(city: Annotated[str, Field(description="From Field.")]) -> None:
    """Look a city up.

    Args:
        city: From the docstring.
    """


def only_args(city: str) -> None:
    """Args:
    city: The city.
    """


def undocumented(city: str) -> None: ...


def test_numpy_entry_can_document_several_parameters() -> None:
    properties = tool(shared_numpy_entry).parameters["properties"]
    assert properties["low"]["description"] == properties["high"]["description"] == "The bounds."


def test_field_description_wins_over_docstring() -> None:
    assert tool(field_beats_docstring).parameters["properties"]["city"] == {
        "description": "From Field.",
        "type": "string",
    }


@pytest.mark.parametrize(
    ("made", "expected"),
    [
        pytest.param(tool(google, description="Overridden."), "Overridden.", id="override"),
        pytest.param(tool(google, description=""), "", id="override-with-empty"),
        pytest.param(tool(undocumented), "", id="no-docstring"),
        pytest.param(tool(only_args), "", id="docstring-without-summary"),
    ],
)
def test_description(made: Tool, expected: str) -> None:
    assert made.description == expected
    assert description_of(made) == expected


# --- a single pydantic model ---------------------------------------------------------------


@tool
def search(query: Query) -> str:
    """Search the index."""
    return f"{query.text}:{query.limit}"


@tool
def search_with_context(context: ToolContext, query: Query) -> str:
    return f"{query.text}@{context.step}"


QUERY_SCHEMA = {
    "type": "object",
    "description": "A search.",
    "properties": {
        "text": {"description": "What to look for.", "type": "string"},
        "limit": {"default": 10, "type": "integer"},
    },
    "required": ["text"],
}


@pytest.mark.parametrize(
    "made", [pytest.param(search, id="alone"), pytest.param(search_with_context, id="with-context")]
)
def test_single_model_schema_is_flattened(made: Tool) -> None:
    assert made.parameters == QUERY_SCHEMA
    assert made.validate('{"text": "cats"}') == {"query": Query(text="cats")}


@pytest.mark.anyio
async def test_single_model_function_receives_an_instance() -> None:
    assert await search.invoke(search.validate('{"text": "cats", "limit": 3}'), CONTEXT) == "cats:3"
    arguments = search_with_context.validate('{"text": "dogs"}')
    assert await search_with_context.invoke(arguments, CONTEXT) == "dogs@2"


def test_single_model_errors_are_located_at_the_top_level() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        search.validate('{"limit": "many"}')
    assert info.value.message == (
        "text: Field required; "
        "limit: Input should be a valid integer, unable to parse string as an integer"
    )


# --- context ---------------------------------------------------------------------------------


@tool
def where_am_i(city: str, info: ToolContext) -> str:
    return f"{city} {info.run_id} {info.tool_call_id} {info.step} {len(info.messages)}"


@tool
def maybe_context(city: str, ctx: ToolContext | None = None) -> str:
    return f"{city} {ctx.tool_call_id if ctx else None}"


@tool
def positional_only(a: int, /, b: int, context: ToolContext) -> int:
    return a - b


@pytest.mark.parametrize(
    ("made", "arguments", "expected"),
    [
        pytest.param(where_am_i, '{"city": "Oslo"}', "Oslo run_1 call_1 2 1", id="any-name"),
        pytest.param(maybe_context, '{"city": "Oslo"}', "Oslo call_1", id="optional-context"),
        pytest.param(positional_only, '{"a": 5, "b": 2}', 3, id="positional-only"),
    ],
)
@pytest.mark.anyio
async def test_context_is_injected_and_not_in_schema(
    made: Tool, arguments: str, expected: object
) -> None:
    assert not {"info", "ctx", "context"} & set(made.parameters["properties"])
    assert await made.invoke(made.validate(arguments), CONTEXT) == expected


# --- strict mode -----------------------------------------------------------------------------


def strict_simple(city: str, days: int = 1, unit: Literal["c", "f"] | None = None) -> None: ...


def plan(name: str, trip: Trip, home: Address | None = None, color: Color = Color.RED) -> None: ...


def many_shapes(
    tags: list[str],
    trips: list[Trip] | None = None,
    pair: tuple[int, Address] = (1, Address(street="a", city="b")),
    either: Address | Trip | None = None,
) -> None: ...


class Node(BaseModel):
    name: str
    weight: int = 1
    children: list[Node] = []


def tree(root: Node, home: Annotated[Node, Field(description="Where to start.")]) -> None: ...


def assert_strict(schema: Any) -> None:
    """Every object, wherever it sits, closes its properties and requires all of them."""
    if isinstance(schema, list):
        for item in schema:
            assert_strict(item)
        return
    if not isinstance(schema, dict):
        return
    assert "default" not in schema
    if schema.get("type") == "object" or "properties" in schema:
        assert schema["additionalProperties"] is False
        assert schema["required"] == list(schema["properties"])
    for key, value in schema.items():
        if key in ("properties", "$defs"):
            for sub in value.values():
                assert_strict(sub)
        elif key in ("items", "prefixItems", "anyOf", "oneOf", "allOf"):
            assert_strict(value)


@pytest.mark.parametrize(
    "made",
    [
        pytest.param(tool(strict_simple, strict=True), id="scalars"),
        pytest.param(tool(plan, strict=True), id="nested-models"),
        pytest.param(tool(many_shapes, strict=True), id="arrays-tuples-unions"),
        pytest.param(tool(search.function, strict=True), id="single-model"),
        pytest.param(tool(no_params, strict=True), id="no-parameters"),
        pytest.param(tool(tree, strict=True), id="recursive-model"),
        pytest.param(
            Tool.from_schema(
                "raw",
                {
                    "type": "object",
                    "properties": {
                        "q": {"type": "string", "default": "x"},
                        "filters": {
                            "type": "array",
                            "items": {"type": "object", "properties": {"k": {"type": "string"}}},
                        },
                    },
                },
                dict,
                strict=True,
            ),
            id="from-schema",
        ),
    ],
)
def test_strict_schema_shape(made: Tool) -> None:
    assert_strict(made.parameters)
    Draft202012Validator.check_schema(made.parameters)
    assert made.definition["function"]["strict"] is True


def test_strict_schema_makes_defaulted_fields_nullable() -> None:
    assert tool(strict_simple, strict=True).parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": INT_OR_NULL,
            "unit": {"anyOf": [{"enum": ["c", "f"], "type": "string"}, {"type": "null"}]},
        },
        "required": ["city", "days", "unit"],
        "additionalProperties": False,
    }
    assert "strict" not in tool(strict_simple).definition["function"]


def test_strict_null_means_default_unless_the_field_was_nullable() -> None:
    made = tool(strict_simple, strict=True)
    assert made.validate('{"city": "Oslo", "days": null, "unit": null}') == {
        "city": "Oslo",
        "days": 1,
        "unit": None,
    }
    with pytest.raises(ToolArgumentsError, match="city: Input should be a valid string"):
        made.validate('{"city": null, "days": 2, "unit": "c"}')


def test_strict_null_means_default_in_nested_models() -> None:
    made = tool(plan, strict=True)
    arguments = made.validate(
        {
            "name": "tour",
            "trip": {
                "stops": [{"street": "Main", "city": "Oslo", "zip_code": None}],
                "nights": None,
                "note": None,
            },
            "home": None,
            "color": None,
        }
    )
    assert arguments == {
        "name": "tour",
        "trip": Trip(stops=[Address(street="Main", city="Oslo")], nights=1, note=None),
        "home": None,
        "color": Color.RED,
    }


def test_strict_null_means_default_in_recursive_models() -> None:
    node = {"name": "a", "weight": None, "children": [{"name": "b", "weight": 2, "children": None}]}
    arguments = tool(tree, strict=True).validate({"root": node, "home": node})
    expected = Node(name="a", children=[Node(name="b", weight=2)])
    assert arguments == {"root": expected, "home": expected}


def test_strict_inlines_a_reference_that_has_a_description() -> None:
    home = tool(tree, strict=True).parameters["properties"]["home"]
    assert "$ref" not in home
    assert home["description"] == "Where to start."
    assert home["required"] == ["name", "weight", "children"]


def test_strict_validate_does_not_mutate_a_mapping_argument() -> None:
    sent = {"city": "Oslo", "days": None, "unit": None}
    tool(strict_simple, strict=True).validate(sent)
    assert sent == {"city": "Oslo", "days": None, "unit": None}


# --- from_schema -----------------------------------------------------------------------------


WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
    "required": ["city"],
    "additionalProperties": False,
}


def weather_handler(args: dict[str, Any]) -> str:
    return f"sunny in {args['city']}"


async def weather_handler_with_context(args: dict[str, Any], context: ToolContext) -> str:
    return f"{args['city']} {context.tool_call_id}"


@pytest.mark.anyio
async def test_from_schema_call() -> None:
    made = Tool.from_schema("weather", WEATHER_SCHEMA, weather_handler, description="Weather.")
    assert made.definition == {
        "type": "function",
        "function": {"name": "weather", "description": "Weather.", "parameters": WEATHER_SCHEMA},
    }
    arguments = made.validate('{"city": "Oslo", "days": 2}')
    assert arguments == {"city": "Oslo", "days": 2}
    assert await made.invoke(arguments, CONTEXT) == "sunny in Oslo"
    assert made.function is weather_handler
    assert made({"city": "Bergen"}) == "sunny in Bergen"


@pytest.mark.anyio
async def test_from_schema_handler_with_context() -> None:
    made = Tool.from_schema("weather", WEATHER_SCHEMA, weather_handler_with_context)
    assert await made.invoke(made.validate('{"city": "Oslo"}'), CONTEXT) == "Oslo call_1"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param('{"city": 5}', "city: 5 is not of type 'string'", id="wrong-type"),
        pytest.param(
            '{"days": 0}',
            "'city' is a required property; days: 0 is less than the minimum of 1",
            id="several",
        ),
        pytest.param(
            '{"city": "Oslo", "wind": true}',
            "Additional properties are not allowed ('wind' was unexpected)",
            id="additional-property",
        ),
    ],
)
def test_from_schema_validation_message(arguments: str, message: str) -> None:
    made = Tool.from_schema("weather", WEATHER_SCHEMA, weather_handler)
    with pytest.raises(ToolArgumentsError) as info:
        made.validate(arguments)
    assert info.value.message == message


DRAFT4_SCHEMA = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "properties": {"n": {"type": "number", "maximum": 5, "exclusiveMaximum": True}},
}


def test_from_schema_uses_the_draft_named_by_dollar_schema() -> None:
    made = Tool.from_schema("bounded", DRAFT4_SCHEMA, weather_handler)
    assert made.validate('{"n": 4}') == {"n": 4}
    with pytest.raises(ToolArgumentsError, match="n: 5 is greater than or equal to the maximum"):
        made.validate('{"n": 5}')


def test_from_schema_strict() -> None:
    schema = {
        "type": "object",
        "properties": {"q": {"type": "string"}, "n": {"type": "integer", "default": 5}},
        "required": ["q"],
    }
    made = Tool.from_schema("find", schema, weather_handler, strict=True)
    assert made.parameters == {
        "type": "object",
        "properties": {"q": {"type": "string"}, "n": INT_OR_NULL},
        "required": ["q", "n"],
        "additionalProperties": False,
    }
    assert made.validate('{"q": "a", "n": null}') == {"q": "a"}
    assert schema["required"] == ["q"]  # the caller's schema is left alone


# --- definition errors -------------------------------------------------------------------


def takes_varargs(*cities: str) -> None: ...


def takes_kwargs(**options: str) -> None: ...


def unannotated(city) -> None: ...  # type: ignore[no-untyped-def]


def opaque_parameter(city: str, lock: Opaque) -> None: ...


def callable_parameter(callback: Callable[[int], int]) -> None: ...


def unresolvable(city: Undefined) -> None: ...  # type: ignore[name-defined]  # noqa: F821


def two_contexts(a: ToolContext, b: ToolContext) -> None: ...


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            lambda: tool(scalars, name="get weather"),
            r"invalid tool name 'get weather' for scalars\(\)",
            id="name-with-space",
        ),
        pytest.param(
            lambda: tool(scalars, name="x" * 65), "invalid tool name 'xxx", id="name-long"
        ),
        pytest.param(lambda: tool(scalars, name=""), "invalid tool name ''", id="name-empty"),
        pytest.param(
            lambda: tool(lambda: None), r"invalid tool name '<lambda>'.*pass name=", id="lambda"
        ),
        pytest.param(lambda: tool(takes_varargs), r"takes_varargs\(\) takes \*cities", id="args"),
        pytest.param(
            lambda: tool(takes_kwargs), r"takes_kwargs\(\) takes \*\*options", id="kwargs"
        ),
        pytest.param(
            lambda: tool(unannotated),
            r"parameter 'city' of unannotated\(\) has no type annotation",
            id="no-annotation",
        ),
        pytest.param(
            lambda: tool(opaque_parameter),
            r"parameter 'lock' of opaque_parameter\(\) has type Opaque, which cannot be "
            r"expressed as JSON schema: Unable to generate pydantic-core schema",
            id="unknown-type",
        ),
        pytest.param(
            lambda: tool(callable_parameter),
            r"parameter 'callback' of callable_parameter\(\) has type .*Callable.*, which "
            r"cannot be expressed as JSON schema",
            id="callable-type",
        ),
        pytest.param(
            lambda: tool(unresolvable),
            r"cannot read the signature of unresolvable\(\): name 'Undefined' is not defined",
            id="unresolvable-hint",
        ),
        pytest.param(
            lambda: tool(cast(Any, 42)), "a tool must be callable, got int: 42", id="not-callable"
        ),
        pytest.param(
            lambda: tool(two_contexts),
            r"two_contexts\(\) has two ToolContext parameters, 'a' and 'b'",
            id="two-contexts",
        ),
        pytest.param(lambda: tool(search), r"Tool\(name='search'.* is already a tool", id="tool"),
        pytest.param(
            lambda: tool(mappings, strict=True),
            r"mappings\(\): strict mode needs every object's properties known in advance, "
            r"but the object at /properties/weights is free-form",
            id="strict-dict",
        ),
        pytest.param(
            lambda: Tool.from_schema("no good", WEATHER_SCHEMA, weather_handler),
            r"invalid tool name 'no good' for Tool.from_schema\(\)",
            id="from-schema-name",
        ),
        pytest.param(
            lambda: Tool.from_schema("weather", WEATHER_SCHEMA, cast(Any, "handler")),
            "the handler of tool 'weather' is not callable",
            id="from-schema-handler-not-callable",
        ),
        pytest.param(
            lambda: Tool.from_schema("weather", WEATHER_SCHEMA, lambda: None),
            r"the handler of tool 'weather' must accept \(args\) or \(args, context\)",
            id="from-schema-handler-arity",
        ),
        pytest.param(
            lambda: Tool.from_schema("weather", {"type": "array"}, weather_handler),
            "the parameters of tool 'weather' must be an object schema",
            id="from-schema-not-object",
        ),
        pytest.param(
            lambda: Tool.from_schema(
                "weather",
                {"type": "object", "properties": {"city": {"type": "strin"}}},
                weather_handler,
            ),
            r"invalid JSON schema for tool 'weather': 'strin' is not valid .*"
            r"\(at /properties/city/type\)",
            id="from-schema-invalid",
        ),
        pytest.param(
            lambda: Tool.from_schema(
                "weather",
                {key: value for key, value in DRAFT4_SCHEMA.items() if key != "$schema"},
                weather_handler,
            ),
            "invalid JSON schema for tool 'weather'",
            id="from-schema-invalid-for-default-draft",
        ),
        pytest.param(
            lambda: Tool.from_schema(
                "weather",
                {"type": "object", "properties": {"tags": {"type": "object"}}},
                weather_handler,
                strict=True,
            ),
            r"tool 'weather': strict mode needs .* the object at /properties/tags is free-form",
            id="from-schema-strict-free-form",
        ),
    ],
)
def test_definition_error(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=message):
        make()


# --- validation errors ---------------------------------------------------------------------


@tool
def forecast(city: str, days: int = 1, stops: list[Address] | None = None) -> str:
    """Get the forecast for a city."""
    return f"{city} for {days} days"


@tool
def defaults_only(days: int = 1) -> int:
    return days


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(
            '{"city": "Oslo" "days": 2}',
            "arguments are not valid JSON: Expecting ',' delimiter at line 1 column 17",
            id="not-json",
        ),
        pytest.param(
            '{"city": ',
            "arguments are not valid JSON: Expecting value at line 1 column 10",
            id="cut-short",
        ),
        pytest.param(
            '{"city": "Oslo", "days": NaN}',
            "arguments are not valid JSON: NaN is not allowed",
            id="nan",
        ),
        pytest.param("[1, 2]", "arguments must be a JSON object, got array", id="array"),
        pytest.param('"Oslo"', "arguments must be a JSON object, got string", id="string"),
        pytest.param("3", "arguments must be a JSON object, got number", id="number"),
        pytest.param("true", "arguments must be a JSON object, got boolean", id="boolean"),
        pytest.param("null", "arguments must be a JSON object, got null", id="null"),
        pytest.param("{}", "city: Field required", id="missing"),
        pytest.param(
            '{"city": "Oslo", "days": "many"}',
            "days: Input should be a valid integer, unable to parse string as an integer",
            id="wrong-type",
        ),
        pytest.param(
            '{"city": "Oslo", "stops": [{"street": "Main"}]}',
            "stops.0.city: Field required",
            id="nested-location",
        ),
        pytest.param(
            '{"city": ["Oslo"], "days": 1.5}',
            "city: Input should be a valid string; "
            "days: Input should be a valid integer, got a number with a fractional part",
            id="several",
        ),
    ],
)
def test_validation_message(arguments: str, message: str) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        forecast.validate(arguments)
    assert info.value.message == message
    assert "https://" not in str(info.value)


@tool
def total(numbers: list[int]) -> int:
    return sum(numbers)


def test_long_validation_message_is_cut() -> None:
    with pytest.raises(ToolArgumentsError) as info:
        total.validate({"numbers": ["x"] * 200})
    message = info.value.message
    assert message.startswith("numbers.0: Input should be a valid integer")
    assert len(message) <= 650
    assert message.endswith(" more errors")


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param("", id="empty"),
        pytest.param("  \n", id="whitespace"),
        pytest.param({}, id="empty-mapping"),
        pytest.param(MappingProxyType({}), id="read-only-mapping"),
    ],
)
def test_blank_arguments_mean_no_arguments(arguments: str | Mapping[str, Any]) -> None:
    assert defaults_only.validate(arguments) == {"days": 1}


# --- results -----------------------------------------------------------------------------------


class BrokenStr:
    def __str__(self) -> str:
        raise RuntimeError("no")


def circular() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("sunny", "sunny", id="str"),
        pytest.param(Shade.DARK, "dark", id="str-enum"),
        pytest.param(
            Address(street="Main", city="Oslo"),
            '{"street":"Main","city":"Oslo","zip_code":""}',
            id="model",
        ),
        pytest.param({"a": 1, "b": [1, 2]}, '{"a":1,"b":[1,2]}', id="dict"),
        pytest.param([1, "x"], '[1,"x"]', id="list"),
        pytest.param((1, 2), "[1,2]", id="tuple"),
        pytest.param(3, "3", id="int"),
        pytest.param(1.5, "1.5", id="float"),
        pytest.param(True, "true", id="bool"),
        pytest.param(None, "null", id="none"),
        pytest.param(Point(1, 2), '{"x":1,"y":2}', id="dataclass"),
        pytest.param(datetime(2024, 1, 2, 3, 4, 5), '"2024-01-02T03:04:05"', id="datetime"),
        pytest.param(Color.RED, '"red"', id="enum"),
        pytest.param({"lock": Opaque()}, '{"lock":"opaque"}', id="unknown-inside"),
        pytest.param(circular(), '["[circular reference]"]', id="circular"),
    ],
)
def test_format_tool_result(value: object, expected: str) -> None:
    assert format_tool_result(value) == expected


def test_format_tool_result_never_raises() -> None:
    assert format_tool_result(BrokenStr()).startswith('"<tests.test_tools.BrokenStr object at')


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    )
)
def test_format_tool_result_of_json_values_is_json(value: object) -> None:
    text = format_tool_result(value)
    assert text == value if isinstance(value, str) else json.loads(text) == value


# --- toolsets ----------------------------------------------------------------------------------


def test_build_toolset() -> None:
    toolset = build_toolset([forecast, scalars])
    assert list(toolset) == ["forecast", "scalars"]
    assert toolset["forecast"] is forecast
    assert toolset["scalars"].function is scalars


@pytest.mark.parametrize(
    "tools",
    [
        pytest.param([forecast, forecast], id="same-tool"),
        pytest.param([forecast, tool(scalars, name="forecast")], id="same-name"),
    ],
)
def test_build_toolset_rejects_duplicate_names(tools: list[Tool]) -> None:
    with pytest.raises(ToolDefinitionError, match="two tools are named 'forecast'"):
        build_toolset(tools)


# --- invoking ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_sync_tool_runs_in_a_worker_thread() -> None:
    threads: list[threading.Thread] = []

    def record() -> str:
        threads.append(threading.current_thread())
        return "done"

    made = tool(record)
    assert await made.invoke(made.validate(""), CONTEXT) == "done"
    assert threads[0] is not threading.current_thread()


@pytest.mark.anyio
async def test_async_tool_is_awaited_on_the_event_loop() -> None:
    threads: list[threading.Thread] = []

    async def record(city: str) -> str:
        threads.append(threading.current_thread())
        return city

    made = tool(record)
    assert await made.invoke(made.validate('{"city": "Oslo"}'), CONTEXT) == "Oslo"
    assert threads == [threading.current_thread()]


class AsyncCallable:
    """Look a city up."""

    async def __call__(self, city: str) -> str:
        return city.upper()


@pytest.mark.anyio
async def test_object_with_async_call_is_a_tool() -> None:
    made = tool(AsyncCallable())
    assert made.name == "AsyncCallable"
    assert made.description == "Look a city up."
    assert await made.invoke(made.validate('{"city": "oslo"}'), CONTEXT) == "OSLO"


def fails_sync(city: str) -> None:
    raise ToolError(f"no weather for {city}")


async def fails_async(city: str) -> None:
    raise ToolError(f"no weather for {city}")


def crashes(city: str) -> None:
    raise KeyError(city)


@pytest.mark.parametrize(
    ("function", "error"),
    [
        pytest.param(fails_sync, ToolError, id="sync-tool-error"),
        pytest.param(fails_async, ToolError, id="async-tool-error"),
        pytest.param(crashes, KeyError, id="sync-crash"),
        pytest.param(
            lambda: Tool.from_schema("raw", WEATHER_SCHEMA, fails_sync), ToolError, id="handler"
        ),
    ],
)
@pytest.mark.anyio
async def test_exceptions_propagate_unchanged(
    function: Callable[..., Any], error: type[Exception]
) -> None:
    made = function() if function.__name__ == "<lambda>" else tool(function)
    with pytest.raises(error):
        await made.invoke(made.validate('{"city": "Oslo"}'), CONTEXT)


# --- the Tool value ------------------------------------------------------------------------------


@tool()
def empty_parens() -> str:
    return "ok"


@tool(name="lookup", description="Find it.", strict=True, concurrent=False)
def with_options(city: str) -> str:
    return city


def test_decorator_forms() -> None:
    assert (forecast.name, forecast.strict, forecast.concurrent) == ("forecast", False, True)
    assert (empty_parens.name, empty_parens.description) == ("empty_parens", "")
    assert (with_options.name, with_options.description) == ("lookup", "Find it.")
    assert (with_options.strict, with_options.concurrent) == (True, False)


def test_decorated_function_still_works_as_a_function() -> None:
    assert forecast("Oslo", days=2) == "Oslo for 2 days"
    assert empty_parens() == "ok"


def test_tool_is_immutable() -> None:
    with pytest.raises(AttributeError, match="immutable"):
        forecast.name = "other"
    with pytest.raises(AttributeError, match="immutable"):
        del forecast.description
    definition = forecast.definition
    definition["function"]["parameters"]["properties"].clear()
    assert forecast.parameters["properties"]


def test_definition_and_repr() -> None:
    assert with_options.definition == {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Find it.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }
    assert repr(with_options) == "Tool(name='lookup', strict=True, concurrent=False)"


@given(st.text())
def test_validate_only_raises_tool_arguments_error(text: str) -> None:
    outcome: dict[str, Any] | ToolArgumentsError
    try:
        outcome = forecast.validate(text)
    except ToolArgumentsError as exc:
        outcome = exc
    if isinstance(outcome, ToolArgumentsError):
        assert 0 < len(outcome.message) <= 650
    else:
        assert isinstance(outcome["city"], str)


def test_invoke_here_runs_a_sync_tool_in_the_calling_thread() -> None:
    threads: list[threading.Thread] = []

    @tool
    def add(a: int, b: int, ctx: ToolContext) -> str:
        """Add."""
        threads.append(threading.current_thread())
        return f"{a + b} for {ctx.tool_call_id}"

    @tool
    async def later(a: int) -> int:
        """Async."""
        return a

    assert not add.is_async
    assert later.is_async
    assert add.invoke_here({"a": 1, "b": 2}, CONTEXT) == f"3 for {CONTEXT.tool_call_id}"
    assert threads == [threading.current_thread()]  # no hop to another thread
    with pytest.raises(ToolDefinitionError):
        later.invoke_here({"a": 1}, CONTEXT)
