"""The offline model's arguments for one call, filled from the message by each parameter's
type and name (no I/O).

Place-like strings take the places named in the message, numbers the numbers near the
parameter's name, enums the value mentioned, dates the ISO dates in order, arrays of
objects one object per person named; a required parameter the message says nothing
about gets a sensible placeholder, an optional one is left out.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ._schemas import (
    MAX_DEPTH,
    name_stems,
    param_kind,
    resolve,
    schema_properties,
    stem_set,
)
from ._text import PLACE_PREPOSITIONS, STOP_WORDS, Entity, Message, Token, stem

__all__ = ["arguments"]

_ORIGIN = stem_set("origin from source departure depart start")
_DESTINATION = stem_set("destination to dest arrival arrive target")
_END = stem_set("end to until return back checkout last")
_HEADCOUNT = stem_set("people persons travellers guests adults passengers")
_UNITS = _HEADCOUNT | stem_set("day days night nights week weeks month months hour hours minute")
_DAY = stem_set("day")
_NIGHT = stem_set("night")
_TO_PREPOSITIONS = frozenset({"to", "into", "toward", "towards", "visit", "visiting"})
_MAX_ITEMS = 20
_MISSING: Any = object()


@dataclass(slots=True)
class _Fill:
    """What one call's arguments may still take from the message."""

    message: Message
    root: dict[str, Any]
    places: list[Entity]
    people: list[Entity]
    first: int = 0
    last: int | None = None
    used: set[int] = field(default_factory=set)
    """Token indexes of the numbers taken so far."""
    dates_used: int = 0
    last_date: date | None = None
    zones_used: int = 0


def arguments(
    parameters: dict[str, Any], message: Message, places: list[Entity], people: list[Entity]
) -> dict[str, Any]:
    """Arguments for a tool whose schema is `parameters`, with these places and people."""
    fill = _Fill(message, parameters, list(places), list(people))
    value = _object(fill, parameters, 0)
    return value if isinstance(value, dict) else {}


def _object(fill: _Fill, schema: dict[str, Any], depth: int) -> dict[str, Any]:
    required = schema.get("required")
    required = set(required) if isinstance(required, list) else set()
    out: dict[str, Any] = {}
    for name, prop in schema_properties(schema, fill.root).items():
        value = _value(fill, name, prop, name in required, depth + 1)
        if value is not _MISSING:
            out[name] = value
    return out


def _value(fill: _Fill, name: str, raw: dict[str, Any], required: bool, depth: int) -> Any:
    schema, nullable = resolve(raw, fill.root)
    kind = param_kind(name, schema)
    if depth > MAX_DEPTH:
        return None if nullable else _MISSING
    found = _from_text(fill, name, schema, kind, depth)
    if found is not _MISSING:
        return found
    if not required:
        return _MISSING
    if nullable:
        return None  # strict mode: null means "use the default"
    return _placeholder(fill, name, schema, kind, depth)


def _from_text(fill: _Fill, name: str, schema: dict[str, Any], kind: str, depth: int) -> Any:
    message = fill.message
    words = name_stems(name)
    if kind == "enum":
        return _mentioned(message, schema.get("enum") or [schema.get("const")])
    if kind == "zone" and fill.zones_used < len(message.zones):
        fill.zones_used += 1
        return message.zones[fill.zones_used - 1]
    if kind in ("place", "zone"):
        place = _take_place(fill, words)
        return _text(place.text, schema) if place else _MISSING
    if kind == "expression":
        return message.expression if message.expression else _MISSING
    if kind == "person":
        return _text(fill.people.pop(0).text, schema) if fill.people else _MISSING
    if kind == "date":
        taken = _take_date(fill, words, schema)
        return taken if taken is not None else _MISSING
    if kind == "number":
        number = _take_number(fill, words, required=False)
        return _number(number, schema) if number is not None else _MISSING
    if kind == "boolean":
        return True if _mentions(message, words) else _MISSING
    if kind == "array":
        items = _array(fill, name, schema, depth, required=False)
        return items if items else _MISSING
    if kind == "object":
        if not any(_mentions(message, name_stems(p)) for p in schema_properties(schema, fill.root)):
            return _MISSING
        return _object(fill, schema, depth)
    if message.quoted and kind in ("phrase", "string"):
        return _text(message.quoted[0], schema)
    return _MISSING


def _placeholder(fill: _Fill, name: str, schema: dict[str, Any], kind: str, depth: int) -> Any:
    """A sensible value for a required parameter the message says nothing about."""
    if "default" in schema:
        return schema["default"]
    if kind == "enum":
        values = schema.get("enum") or [schema.get("const")]
        return values[0]
    if kind == "number":
        words = name_stems(name)
        number = _take_number(fill, words, required=True)
        if number is None:
            number = 30.0 if "age" in words else 1.0  # an adult, or one of something
        return _number(number, schema)
    if kind == "boolean":
        return False
    if kind == "date":
        return _take_date(fill, name_stems(name), schema, invent=True)
    if kind == "array":
        return _array(fill, name, schema, depth, required=True)
    if kind == "object":
        return _object(fill, schema, depth)
    if kind == "zone":
        return "UTC"
    if kind == "person":
        return "Guest"
    if kind in ("phrase", "expression"):
        return _text(fill.message.phrase() or "?", schema)
    fmt = schema.get("format")
    formats = {"email": "user@example.com", "uri": "https://example.com", "time": "09:00:00"}
    if fmt in formats:
        return formats[fmt]
    if fmt == "uuid":
        return "00000000-0000-0000-0000-000000000000"
    return _text(_content_word(fill) if kind == "place" else fill.message.phrase() or "?", schema)


def _array(fill: _Fill, name: str, schema: dict[str, Any], depth: int, *, required: bool) -> Any:
    items_schema, _ = resolve(schema.get("items") or {}, fill.root)
    kind = param_kind(name, items_schema)
    low = schema.get("minItems", 1 if required else 0)
    high = min(schema.get("maxItems", _MAX_ITEMS), _MAX_ITEMS)
    message = fill.message
    items: list[Any] = []
    if kind in ("place", "zone"):
        items = [e.text for e in fill.places]
        fill.places.clear()
    elif kind == "number":
        numbers = [t for t in message.numbers(fill.first, fill.last) if t.index not in fill.used]
        items = [_number(float(t.text), items_schema) for t in numbers]
    elif kind == "enum":
        values = items_schema.get("enum") or []
        items = [v for v in values if _mentioned(message, [v]) is not _MISSING]
    elif kind == "object":
        items = _objects(fill, items_schema, depth, required=required)
    elif kind in ("string", "phrase", "person"):
        items = [e.text for e in fill.people] if kind == "person" else list(message.quoted)
    if not items and not required:
        return []
    while len(items) < low:
        items.append(_placeholder(fill, name, items_schema, kind, depth))
    return items[:high]


def _objects(fill: _Fill, schema: dict[str, Any], depth: int, *, required: bool) -> list[Any]:
    """Objects for an array: one per person named ("Alice (34) and Bob (36)") or counted."""
    properties = schema_properties(schema, fill.root)
    per_person = any(
        param_kind(p, resolve(s, fill.root)[0]) == "person" for p, s in properties.items()
    )
    people = fill.people if per_person else []
    items: list[Any] = []
    for i, person in enumerate(people[:_MAX_ITEMS]):
        last = people[i + 1].first - 1 if i + 1 < len(people) else fill.last
        child = _Fill(fill.message, fill.root, [], [person], person.first, last, fill.used)
        items.append(_object(child, schema, depth))
    if people:
        fill.people = []
        return items
    count = 0
    for token in fill.message.numbers(fill.first, fill.last):
        if token.index not in fill.used and fill.message.near(token, _HEADCOUNT, 1):
            fill.used.add(token.index)
            count = min(int(float(token.text)), _MAX_ITEMS)
            break
    if count == 0 and not required:
        return []
    for k in range(max(count, 1)):
        child = _Fill(fill.message, fill.root, [], [], fill.first, fill.last, fill.used)
        item = _object(child, schema, depth)
        for prop in properties:
            if param_kind(prop, properties[prop]) == "person":
                item[prop] = f"Guest {k + 1}"
        items.append(item)
    return items


def _take_place(fill: _Fill, words: set[str]) -> Entity | None:
    if not fill.places:
        return None
    if words & _ORIGIN:
        preferred = [e for e in fill.places if e.preposition == "from"]
    elif words & _DESTINATION:
        preferred = [e for e in fill.places if e.preposition in _TO_PREPOSITIONS]
    else:
        preferred = [e for e in fill.places if e.preposition != "from"]
    place = (preferred or fill.places)[0]
    fill.places.remove(place)
    return place


def _take_number(fill: _Fill, words: set[str], *, required: bool) -> float | None:
    wanted = words - STOP_WORDS
    numbers = [t for t in fill.message.numbers(fill.first, fill.last) if t.index not in fill.used]
    near = [t for t in numbers if fill.message.near(t, wanted)]
    # "5 days", "2 travellers": such numbers count something else, not this parameter.
    free = [t for t in numbers if not _counts_something(fill.message, t)]
    pick = near[0] if near else (free[0] if required and free else None)
    if pick is None:
        return None
    fill.used.add(pick.index)
    return float(pick.text)


def _counts_something(message: Message, token: Token) -> bool:
    following = message.tokens[token.index + 1 : token.index + 2]
    return bool(following) and following[0].stem in _UNITS


def _take_date(
    fill: _Fill, words: set[str], schema: dict[str, Any], *, invent: bool = False
) -> str | None:
    dates = sorted(fill.message.dates())  # a range reads start to end whatever the order
    if fill.dates_used < len(dates):
        day = dates[fill.dates_used]
        fill.dates_used += 1
    elif not invent:
        return None
    elif words & _END and fill.last_date is not None:
        day = fill.last_date + timedelta(days=_duration(fill.message))
    else:
        day = date.today() + timedelta(days=30)
    fill.last_date = day
    return day.isoformat() + ("T09:00:00" if schema.get("format") == "date-time" else "")


def _duration(message: Message) -> int:
    """Days from the first to the last day: "for 5 days" -> 4, "3 nights" -> 3."""
    for token in message.numbers():
        if message.near(token, _DAY, 1):
            return max(int(float(token.text)) - 1, 0)
        if message.near(token, _NIGHT, 1):
            return int(float(token.text))
    return 3


def _mentioned(message: Message, values: Sequence[Any]) -> Any:
    """The first of `values` the message mentions, or `_MISSING`."""
    text = message.text.lower()
    word_stems = {t.stem for t in message.tokens if t.kind == "word"}
    numbers = {float(t.text) for t in message.numbers()}
    best: tuple[int, Any] | None = None
    for value in values:
        if isinstance(value, str) and value:
            match = re.search(rf"(?<!\w){re.escape(value.lower())}(?!\w)", text)
            position = match.start() if match else -1
            if position < 0 and stem(value) in word_stems:
                position = len(text)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            position = len(text) if float(value) in numbers else -1
        else:
            continue
        if position >= 0 and (best is None or position < best[0]):
            best = (position, value)
    return best[1] if best else _MISSING


def _mentions(message: Message, words: set[str]) -> bool:
    wanted = words - STOP_WORDS
    return any(t.kind == "word" and t.stem in wanted for t in message.tokens)


def _content_word(fill: _Fill) -> str:
    """A place written in lower case ("weather in paris"), else "Unknown"."""
    tokens = fill.message.tokens
    for before, token in itertools.pairwise(tokens):
        lower = token.text.lower()
        if before.text.lower() in PLACE_PREPOSITIONS and token.kind == "word":
            vocabulary = fill.message.vocabulary
            if lower not in STOP_WORDS | vocabulary and token.stem not in vocabulary:
                return token.text.capitalize()
    return "Unknown"


def _number(value: float, schema: dict[str, Any]) -> int | float:
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(low, int | float):
        value = float(max(value, low))
    if isinstance(high, int | float):
        value = float(min(value, high))
    if schema.get("type") == "integer" or value.is_integer():
        return round(value)
    return value


def _text(value: str, schema: dict[str, Any]) -> str:
    high = schema.get("maxLength")
    return value[:high] if isinstance(high, int) else value
