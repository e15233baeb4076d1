"""Properties of `ResponsesAssembler`: cutting never matters, garbage never escapes as a
foreign exception."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentstream import (
    ReasoningDelta,
    ResponsesAssembler,
    ServerError,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    event_to_dict,
)
from agentstream.wire.responses._output import reduce_output

from ._streams import RESPONSES_INDEX, load_events

NAMES = sorted(RESPONSES_INDEX)
_CACHE: dict[str, list[dict[str, Any]]] = {}
DELTAS = {
    "response.output_text.delta": "content_index",
    "response.refusal.delta": "content_index",
    "response.reasoning_text.delta": "content_index",
    "response.reasoning_summary_text.delta": "summary_index",
    "response.function_call_arguments.delta": None,
}


def events_of(name: str) -> list[dict[str, Any]]:
    if name not in _CACHE:
        _CACHE[name] = load_events(name)
    return copy.deepcopy(_CACHE[name])


def cut(text: str, data: st.DataObject) -> list[str]:
    """Cut `text` at arbitrary points (at least one piece, possibly empty ones)."""
    points = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=6)))
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def refragment(events: list[dict[str, Any]], data: st.DataObject) -> list[dict[str, Any]]:
    """The same stream with each run of deltas for one part joined and cut anew."""
    result: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []

    def key(event: dict[str, Any]) -> Any:
        index = DELTAS[event["type"]]
        return (event["type"], event.get("output_index"), event.get(index) if index else None)

    def flush() -> None:
        if run:
            text = "".join(event["delta"] for event in run)
            result.extend({**run[0], "delta": piece} for piece in cut(text, data))
            run.clear()

    for event in events:
        if event.get("type") in DELTAS:
            if run and key(run[0]) != key(event):
                flush()
            run.append(event)
        else:
            flush()
            result.append(event)
    flush()
    return result


def told(events: list[StreamEvent]) -> tuple[str, str, dict[int, str]]:
    arguments: dict[int, str] = {}
    for event in events:
        if isinstance(event, ToolCallDelta):
            arguments[event.index] = arguments.get(event.index, "") + event.delta
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    return text, reasoning, arguments


def run(events: list[dict[str, Any]]) -> tuple[list[StreamEvent], dict[str, Any]]:
    assembler = ResponsesAssembler(new_id=lambda: "call_x")
    produced = [made for event in events for made in assembler.feed(event)]
    return produced, reduce_output(assembler.finish())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), data=st.data())
def test_any_cutting_of_a_recording_assembles_to_the_same_output(
    name: str, data: st.DataObject
) -> None:
    events = events_of(name)
    original_events, original = run(events)
    recut_events, recut = run(refragment(events, data))
    assert recut == original
    assert told(recut_events) == told(original_events)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(NAMES),
    keep_done=st.booleans(),
    keep_terminal_output=st.booleans(),
    data=st.data(),
)
def test_deltas_alone_or_finished_values_alone_give_the_same_output(
    name: str, keep_done: bool, keep_terminal_output: bool, data: st.DataObject
) -> None:
    """Without `.done` events, or without the terminal output, nothing is lost."""
    events = events_of(name)
    _, original = run(events)
    trimmed = []
    for event in refragment(events, data):
        kind = event.get("type", "")
        if not keep_done and kind.endswith("_text.done") | kind.endswith("arguments.done"):
            continue
        if not keep_terminal_output and kind == "response.completed":
            event = {**event, "response": {**event["response"], "output": []}}
        trimmed.append(event)
    produced, result = run(trimmed)
    if keep_terminal_output:
        assert result == original
    else:  # ids may differ where the stream and the terminal response disagree
        strip = [{k: v for k, v in item.items() if k != "id"} for item in result["output"]]
        want = [{k: v for k, v in item.items() if k != "id"} for item in original["output"]]
        assert strip == want
    text, _, arguments = told(produced)
    messages = [item["text"] for item in result["output"] if item["type"] == "message"]
    assert text == "".join(messages)
    calls = [
        (index, item["arguments"])
        for index, item in enumerate(result["output"])
        if item["type"] == "function_call"
    ]
    assert [(index, arguments.get(index, "")) for index, _ in calls] == calls


scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=6)
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths(value: Any) -> list[tuple[Any, ...]]:
    """Every path to a field of a JSON value (iteratively, so depth never matters)."""
    found: list[tuple[Any, ...]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, (dict, list)):
            children = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in children:
                found.append((*path, key))
                stack.append(((*path, key), child))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """`value` with the field at `path` set to `new`: a copy along the path only."""
    if not path:
        return new
    head, *rest = path
    copied = list(value) if isinstance(value, list) else dict(value)
    copied[head] = replaced(value[head], tuple(rest), new)
    return copied


def feed_all(events: list[Any]) -> None:
    assembler = ResponsesAssembler()
    for event in events:
        try:
            produced = assembler.feed(event)
        except StreamError:
            continue
        for made in produced:
            if not isinstance(made, ServerError):  # a server error's body is as sent
                event_to_dict(made)
    output = assembler.finish()
    reduce_output(output)
    output.stream_error()
    for call in output.tool_calls:
        assert isinstance(call.arguments, str)
        assert call.id
    assert output.message.content == output.text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), data=st.data())
def test_a_wrong_type_at_any_field_of_a_recording_raises_only_stream_error(
    name: str, data: st.DataObject
) -> None:
    events: list[Any] = events_of(name)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(events) - 1))
        choices = [(), *paths(events[position])]
        path = data.draw(st.sampled_from(choices))
        events[position] = replaced(events[position], path, data.draw(anything))
    feed_all(events)


event_types = st.sampled_from(
    [
        "response.created",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.done",
        "response.output_text.annotation.added",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "error",
    ]
)
items = st.fixed_dictionaries(
    {"type": st.sampled_from(["message", "function_call", "reasoning", "web_search_call"])},
    optional={
        "id": anything,
        "call_id": anything,
        "name": anything,
        "arguments": anything,
        "content": anything,
        "summary": anything,
        "encrypted_content": anything,
        "status": anything,
    },
)
garbage_events = st.fixed_dictionaries(
    {"type": event_types | anything},
    optional={
        "output_index": st.integers(-1, 3) | anything,
        "content_index": st.integers(0, 2) | anything,
        "summary_index": st.integers(0, 2) | anything,
        "item_id": anything,
        "delta": st.text(max_size=5) | anything,
        "text": st.text(max_size=5) | anything,
        "arguments": st.text(max_size=5) | anything,
        "item": items | anything,
        "part": anything,
        "response": st.fixed_dictionaries(
            {}, optional={"output": st.lists(items | anything, max_size=3), "usage": anything}
        )
        | anything,
        "error": anything,
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(garbage_events | anything, max_size=10))
def test_garbage_events_raise_only_stream_error(events: list[Any]) -> None:
    feed_all(events)


def _deep() -> dict[str, Any]:
    deep: dict[str, Any] = {}
    for _ in range(50_000):
        deep = {"a": deep}
    return deep


WRONG: list[Any] = [None, True, -1, 10**5000, 1.5, "x", [], {}, [[]], {"type": []}, _deep()]


@pytest.mark.parametrize(
    "name",
    [
        "chatlas__chat--chat-callbacks-1",
        "pydantic-ai__phase-streamed-on-part-start-1",
        "pydantic-ai__raw-cot-stream-openrouter",
        "vercel-ai__openai-mcp-tool-approval-1",
    ],
)
def test_every_field_of_a_recording_given_every_wrong_type(name: str) -> None:
    """Exhaustive where hypothesis samples: each field of each event, each wrong value."""
    original = events_of(name)
    for position, event in enumerate(original):
        for path in [(), *paths(event)]:
            if "logprobs" in path or "tools" in path:
                continue  # long lists of what is never read: they would only slow this down
            for wrong in WRONG:
                events: list[Any] = list(original)
                events[position] = replaced(event, path, wrong)
                feed_all(events)
