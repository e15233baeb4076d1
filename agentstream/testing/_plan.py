"""Which tools the offline model calls for a message, and how many calls (no I/O).

Each tool is scored by the words it shares with the user's message: its name counts
double, its description and parameter names once, enum values one and a half; an
arithmetic expression favours a tool that takes one, a place a tool that takes one.
A tool with one place parameter gets one call per place named.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._arguments import arguments
from ._schemas import has_people, param_kind, schema_properties
from ._text import STOP_WORDS, Entity, Message, Token, split_name, stem, stems

__all__ = [
    "THRESHOLD",
    "Choice",
    "PlannedCall",
    "ToolSpec",
    "choose_tools",
    "plan_calls",
    "read_tools",
    "score",
    "vocabulary_of",
]

THRESHOLD = 2.0
"""The score a tool needs to be called."""

_MATHS_WORDS = frozenset({"calcul", "arithmetic", "math", "comput", "evaluat"})


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as the request describes it."""

    name: str
    description: str
    parameters: dict[str, Any]
    vocabulary: dict[str, float]
    """Stem -> weight of the words that describe the tool."""
    place_params: tuple[str, ...]
    """Top-level string parameters that take one place or time zone."""
    has_people: bool
    takes_expression: bool


@dataclass(frozen=True, slots=True)
class Choice:
    """A tool the message fits, and why."""

    spec: ToolSpec
    score: float
    matched: tuple[Token, ...]
    """The message's words that describe the tool."""


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One call to make."""

    name: str
    arguments: dict[str, Any]


def read_tools(tools: Sequence[Any]) -> list[ToolSpec]:
    """The function tools of a request's `tools` list (others are ignored)."""
    specs: list[ToolSpec] = []
    for entry in tools:
        function = entry.get("function") if isinstance(entry, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            continue
        name: str = function["name"]
        description = function.get("description")
        description = description if isinstance(description, str) else ""
        parameters = function.get("parameters")
        parameters = dict(parameters) if isinstance(parameters, Mapping) else {}
        properties = schema_properties(parameters, parameters)
        vocabulary: dict[str, float] = {}
        _add(vocabulary, [stem(w) for w in split_name(name)], 2.0)
        _add(vocabulary, stems(description), 1.0)
        for prop, schema in properties.items():
            _add(vocabulary, [stem(w) for w in split_name(prop)], 1.0)
            for value in schema.get("enum") or ():
                if isinstance(value, str):
                    _add(vocabulary, stems(value), 1.5)
        kinds = {prop: param_kind(prop, schema) for prop, schema in properties.items()}
        specs.append(
            ToolSpec(
                name=name,
                description=description,
                parameters=parameters,
                vocabulary=vocabulary,
                place_params=tuple(p for p, k in kinds.items() if k in ("place", "zone")),
                has_people=has_people(parameters, parameters, 0),
                takes_expression="expression" in kinds.values()
                or bool(_MATHS_WORDS.intersection(vocabulary)),
            )
        )
    return specs


def vocabulary_of(specs: Sequence[ToolSpec]) -> frozenset[str]:
    """Every word (stem) and enum value the tools use: such words are never names."""
    words = {w for spec in specs for w in spec.vocabulary}
    for spec in specs:
        for schema in schema_properties(spec.parameters, spec.parameters).values():
            words.update(str(v).lower() for v in schema.get("enum") or ())
    return frozenset(words)


def score(spec: ToolSpec, message: Message) -> Choice:
    """How well `spec` fits `message`."""
    matched: list[Token] = []
    seen: set[str] = set()
    total = 0.0
    for token in message.tokens:
        if token.kind != "word" or token.stem in seen or token.text.lower() in STOP_WORDS:
            continue
        weight = spec.vocabulary.get(token.stem)
        if weight and token.stem not in STOP_WORDS:
            seen.add(token.stem)
            matched.append(token)
            total += weight
    if message.expression and spec.takes_expression:
        total += 3.0
    if spec.place_params and any(e.is_place for e in message.entities):
        total += 1.0
    return Choice(spec, total, tuple(matched))


def choose_tools(specs: Sequence[ToolSpec], message: Message, tool_choice: Any) -> list[Choice]:
    """The tools to call for `message`, in the request's order; `[]` for none."""
    if tool_choice == "none" or not specs:
        return []
    choices = [score(spec, message) for spec in specs]
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        wanted = function.get("name") if isinstance(function, Mapping) else None
        return [c for c in choices if c.spec.name == wanted][:1]
    chosen = [c for c in choices if c.score >= THRESHOLD]
    if not chosen and tool_choice == "required":
        chosen = [max(choices, key=lambda c: c.score)]
    return chosen


def plan_calls(choices: Sequence[Choice], message: Message) -> list[PlannedCall]:
    """The calls for the chosen tools: one per place when a tool takes one place."""
    places = [e for e in message.entities if e.is_place]
    others = [e for e in message.entities if not e.is_place]
    owners = _place_owners(choices, places)
    calls: list[PlannedCall] = []
    for choice in choices:
        spec = choice.spec
        mine = [e for e in places if spec.name in owners.get(e.first, ())]
        if not places and not spec.has_people:
            mine = others  # "Paris weather?": a bare name is a place after all
        people = [e for e in others if e not in mine]
        if len(spec.place_params) == 1 and len(mine) > 1:
            for place in mine:
                calls.append(
                    PlannedCall(spec.name, arguments(spec.parameters, message, [place], people))
                )
        else:
            calls.append(PlannedCall(spec.name, arguments(spec.parameters, message, mine, people)))
    return calls


def _place_owners(choices: Sequence[Choice], places: list[Entity]) -> dict[int, set[str]]:
    """Which tools each place goes to.

    Places in one shared list ("the weather and the time in Paris and Tokyo") go to every
    tool that takes a place; when tool words stand between them ("the weather in Paris
    and the time in Tokyo"), each goes to the tool whose words come nearest before it
    (else after it).
    """
    takers = [c for c in choices if c.spec.place_params]
    if not places or not takers:
        return {}
    start, end = min(e.first for e in places), max(e.last for e in places)
    interleaved = any(start < t.index < end for c in takers for t in c.matched)
    if len(takers) == 1 or not interleaved:
        names = {c.spec.name for c in takers}
        return {entity.first: names for entity in places}
    owners: dict[int, set[str]] = {}
    for entity in places:
        before = [(t.index, c) for c in takers for t in c.matched if t.index < entity.first]
        after = [(-t.index, c) for c in takers for t in c.matched if t.index > entity.last]
        if before or after:
            owners[entity.first] = {max(before or after, key=lambda pair: pair[0])[1].spec.name}
    return owners


def _add(vocabulary: dict[str, float], words: Sequence[str], weight: float) -> None:
    for word in words:
        if len(word) >= 2 and word not in STOP_WORDS:
            vocabulary[word] = max(vocabulary.get(word, 0.0), weight)
