"""The partial value of a typed answer, fed piece by piece (no I/O)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from agentstream import FINAL_TOOL, OutputDelta, StreamAssembler, TextDelta
from agentstream.output._spec import OutputProblem, output_spec, schema_spec
from agentstream.output._watch import OutputWatch


class Guest(BaseModel):
    name: str
    age: int


class Booking(BaseModel):
    city: str
    nights: int
    guests: list[Guest]
    note: str | None = None


def feed_text(watch: OutputWatch, pieces: list[str]) -> list[OutputDelta]:
    deltas: list[OutputDelta] = []
    for piece in pieces:
        deltas += watch.feed([TextDelta(1, 0, piece)])
    return deltas + watch.finish()


def first_appearance(deltas: list[OutputDelta]) -> list[Any]:
    seen: list[Any] = []
    for delta in deltas:
        seen += [entry for entry in delta.completed if entry not in seen]
    return seen


def cut(text: str, points: list[int]) -> list[str]:
    edges = sorted({0, len(text), *(p % (len(text) + 1) for p in points)})
    return [text[a:b] for a, b in itertools.pairwise(edges) if b > a]


names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
bookings: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    city=names,
    nights=st.integers(-5, 10**6),
    guests=st.lists(st.builds(dict, name=names, age=st.integers(0, 120)), max_size=4),
    note=st.none() | names,
)


@settings(max_examples=150, deadline=None)
@given(
    booking=bookings,
    points=st.lists(st.integers(0, 10_000), max_size=40),
    indent=st.sampled_from([None, 1]),
)
def test_any_cutting_gives_the_same_completed_fields_and_value(
    booking: dict[str, Any], points: list[int], indent: int | None
) -> None:
    text = json.dumps(booking, indent=indent, ensure_ascii=False)
    spec = output_spec(Booking)
    by_char = feed_text(OutputWatch(spec, 1, tool=False), list(text))
    by_cut = feed_text(OutputWatch(spec, 1, tool=False), cut(text, points))
    expected = ["city", "nights", "guests", "note"]
    assert first_appearance(by_char) == expected
    assert first_appearance(by_cut) == expected
    for deltas in (by_char, by_cut):
        for before, after in itertools.pairwise(deltas):
            assert after.completed[: len(before.completed)] == before.completed
        assert deltas[-1].partial == booking
        assert deltas[-1].completed == tuple(expected)
    assert spec.parse(text) == Booking.model_validate(booking)


def test_a_field_that_fails_validation_is_never_completed() -> None:
    text = '{"city": "Paris", "nights": "many", "guests": [], "note": null}'
    deltas = feed_text(OutputWatch(output_spec(Booking), 1, tool=False), list(text))
    assert deltas[-1].completed == ("city", "guests", "note")
    with pytest.raises(OutputProblem, match="nights: Input should be a valid integer"):
        output_spec(Booking).parse(text)


def test_a_list_answer_completes_item_by_item() -> None:
    guests = [{"name": "Ann", "age": 30}, {"name": "Bob", "age": "x"}, {"name": "Cy", "age": 5}]
    text = json.dumps({"response": guests})
    deltas = feed_text(OutputWatch(output_spec(list[Guest]), 1, tool=False), list(text))
    assert first_appearance(deltas) == [0, 2]
    assert deltas[-1].partial == guests  # unwrapped


def test_a_field_is_complete_only_once_the_next_begins() -> None:
    watch = OutputWatch(output_spec(Booking), 1, tool=False)
    deltas = feed_text(watch, ['{"city": "Par', 'is", "nigh', 'ts": 12'])
    assert [d.completed for d in deltas] == [(), (), ("city",)]  # finish: still not JSON
    assert [d.partial for d in deltas] == [
        {"city": "Par"},
        {"city": "Paris"},
        {"city": "Paris", "nights": 12},
    ]


def test_a_long_answer_is_parsed_a_logarithmic_number_of_times() -> None:
    guests = [{"name": f"guest {i}", "age": i % 100} for i in range(4000)]
    text = json.dumps({"city": "Paris", "nights": 3, "guests": guests, "note": None})
    pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
    deltas = feed_text(OutputWatch(output_spec(Booking), 1, tool=False), pieces)
    assert len(text) > 100_000
    assert len(deltas) < 150  # each one a parse: every piece would be 25,000
    assert deltas[-1].completed == ("city", "nights", "guests", "note")


def test_the_tool_mode_uses_the_assemblers_partial_arguments() -> None:
    arguments = json.dumps({"city": "Rome", "nights": 2, "guests": [], "note": None})
    assembler = StreamAssembler(step=1)
    watch = OutputWatch(output_spec(Booking), 1, tool=True)
    start = {"index": 0, "id": "c1", "function": {"name": FINAL_TOOL, "arguments": ""}}
    chunks = [{"choices": [{"index": 0, "delta": {"tool_calls": [start]}}]}]
    for i in range(0, len(arguments), 3):
        fragment = {"index": 0, "function": {"arguments": arguments[i : i + 3]}}
        chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [fragment]}}]})
    deltas: list[OutputDelta] = []
    for chunk in chunks:
        events = assembler.feed(chunk)
        deltas += watch.feed(events)
    deltas += watch.finish()
    assert deltas[-1].completed == ("city", "nights", "guests", "note")
    assert deltas[-1].partial == json.loads(arguments)


def test_other_tool_calls_and_choices_are_ignored() -> None:
    watch = OutputWatch(output_spec(Booking), 1, tool=False)
    assert not watch.feed([TextDelta(1, 1, '{"city": "x", "nights": 1, ')])
    assert watch.finish() == []


def test_a_hand_written_schema_checks_with_jsonschema() -> None:
    schema = {
        "title": "Ticket",
        "type": "object",
        "properties": {"seat": {"type": "integer", "minimum": 1}, "row": {"type": "string"}},
        "required": ["seat", "row"],
    }
    spec = schema_spec(schema)
    assert spec.name == "Ticket"
    assert spec.strict
    assert spec.parse('{"seat": 3, "row": "C"}') == {"seat": 3, "row": "C"}
    with pytest.raises(OutputProblem, match="seat: 0 is less than the minimum of 1"):
        spec.parse('{"seat": 0, "row": "C"}')
    with pytest.raises(OutputProblem, match="'row' is a required property"):
        spec.parse('{"seat": 2}')
    text = '{"seat": 0, "row": "C", "x": 1}'
    deltas = feed_text(OutputWatch(spec, 1, tool=False), list(text))
    assert first_appearance(deltas) == ["row", "x"]
    wrapped = schema_spec({"type": "array", "items": {"type": "integer"}})
    assert wrapped.wrapped
    assert wrapped.parse('{"response": [1, 2]}') == [1, 2]
