"""`ResponsesAssembler`: every recorded Responses stream, and the rules real servers demand."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from agentstream import (
    AssembledResponsesOutput,
    ReasoningDelta,
    RefusalDelta,
    ResponsesAssembler,
    ServerError,
    StreamError,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStarted,
    Usage,
)
from agentstream._assemble import _SMALL_ARGUMENTS
from agentstream._responses_output import reduce_output

from ._streams import RESPONSES_INDEX, load_events, responses_params


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"call_generated_{next(counter)}"


def assemble(
    events: Iterable[Any], **options: Any
) -> tuple[list[StreamEvent], AssembledResponsesOutput]:
    assembler = ResponsesAssembler(new_id=ids(), **options)
    produced = [made for event in events for made in assembler.feed(event)]
    return produced, assembler.finish()


def joined(events: list[StreamEvent], kind: type[Any]) -> str:
    return "".join(event.text for event in events if isinstance(event, kind))


def arguments_told(events: list[StreamEvent], index: int) -> str:
    return "".join(e.delta for e in events if isinstance(e, ToolCallDelta) and e.index == index)


@pytest.mark.parametrize("name", responses_params())
def test_recording_assembles_to_its_final(name: str) -> None:
    entry = RESPONSES_INDEX[name]
    _, output = assemble(load_events(name))
    document = reduce_output(output)
    final = entry["final"]
    assert document["status"] == final["status"]
    assert document["usage"] == final["usage"]
    assert document["errors"] == []
    # Texts, arguments, call ids, summaries exactly; ids of other items as the server's
    # terminal response gave them (the final word, also where streamed ids differ).
    assert document["output"] == final["output"]
    assert output.model == entry["model"]
    assert output.stream_error() is None
    assert output.cut_calls == ()
    assert output.ended


@pytest.mark.parametrize("name", responses_params())
def test_recording_events_tell_the_whole_output(name: str) -> None:
    events, output = assemble(load_events(name))
    assert joined(events, TextDelta) == (output.text or "")
    assert not any(isinstance(e, (ServerError, RefusalDelta)) for e in events)
    reasoning = "".join(item.summary_text + (item.text or "") for item in output.reasoning)
    assert joined(events, ReasoningDelta) == reasoning
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [(e.index, e.id, e.name) for e in started] == [
        (c.index, c.id, c.name) for c in output.tool_calls
    ]
    for call, start in zip(output.tool_calls, started, strict=True):
        assert (arguments_told(events, call.index) or "{}") == call.arguments
        deltas = [e for e in events if isinstance(e, ToolCallDelta) and e.index == call.index]
        assert all(e.id == call.id and e.name == call.name for e in deltas)
        if deltas:  # every piece comes after its call started
            assert events.index(deltas[0]) > events.index(start)
        if deltas and len(call.arguments) < _SMALL_ARGUMENTS:  # parsed on every piece
            assert deltas[-1].partial == json.loads(call.arguments)


@pytest.mark.parametrize("name", responses_params())
def test_recording_typed_fields_agree_with_the_items(name: str) -> None:
    _, output = assemble(load_events(name))
    kinds = [item["type"] for item in output.items]
    assert [c.index for c in output.tool_calls] == [
        i for i, kind in enumerate(kinds) if kind == "function_call"
    ]
    assert [r.index for r in output.reasoning] == [
        i for i, kind in enumerate(kinds) if kind == "reasoning"
    ]
    assert (output.text is None) == ("message" not in kinds)
    for reasoning in output.reasoning:
        item = output.items[reasoning.index]
        assert reasoning.encrypted_content == item.get("encrypted_content")
    usage = output.usage_summary
    assert usage is not None
    raw = RESPONSES_INDEX[name]["final"]["usage"]
    assert usage.prompt_tokens == raw["input_tokens"]
    assert usage.completion_tokens == raw["output_tokens"]
    assert usage.total_tokens == raw["total_tokens"]
    assert usage.cached_tokens == (raw.get("input_tokens_details") or {}).get("cached_tokens", 0)


def test_arguments_only_in_done_are_sent_on_as_one_delta() -> None:
    events, output = assemble(load_events("vercel-ai__lmstudio-tool-call-1"))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [e.delta for e in deltas] == ['{"location":"San Francisco"}']
    assert deltas[0].partial == {"location": "San Francisco"}
    (call,) = output.tool_calls
    assert (call.index, call.id, call.name) == (2, "call_2025306790300011", "weather")
    assert output.reasoning[0].text
    assert output.reasoning[0].summary == ()
    assert output.finish_reason == "tool_calls"
    assert output.message.tool_calls == output.tool_calls


def test_counter_call_ids_are_kept_as_sent() -> None:
    _, output = assemble(load_events("pydantic-ai__bedrock-mantle--reused-tool-call-ids-stream-1"))
    assert [call.id for call in output.tool_calls] == ["call_0"]
    assert not output.tool_calls[0].id_generated


def test_encrypted_content_is_the_last_one_seen() -> None:
    events = load_events("vercel-ai__openai-reasoning-encrypted-content-1-resp1")
    seen = [
        e["item"]["encrypted_content"]
        for e in events
        if e["type"].startswith("response.output_item") and e["item"]["type"] == "reasoning"
    ]
    assert len(set(seen)) > 1
    without_terminal = [e for e in events if e["type"] != "response.completed"]
    _, output = assemble(without_terminal)
    assert output.reasoning[0].encrypted_content == seen[-1]
    assert output.items[0]["encrypted_content"] == seen[-1]
    assert output.stream_error() is not None  # and the stream is not whole


def test_overlapping_items_and_items_never_done() -> None:
    name = "pydantic-ai__model-mcp-list-tools-stream-backfills-missing-results"
    events = load_events(name)
    done = {e["output_index"] for e in events if e["type"] == "response.output_item.done"}
    assert {0, 1} - done == {0, 1}
    _, output = assemble(events)
    assert reduce_output(output)["output"] == RESPONSES_INDEX[name]["final"]["output"]


def test_ids_renamed_in_the_terminal_response_take_the_terminal_ones() -> None:
    events = load_events("pydantic-ai__raw-cot-stream-openrouter")
    _, output = assemble(events)
    assert output.items[0]["id"] == events[-1]["response"]["output"][0]["id"]
    assert output.reasoning[0].text


def _rotate_ids(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every event of an item with a fresh item id, as GitHub Copilot sends them."""
    rotated = []
    for number, event in enumerate(events):
        event = json.loads(json.dumps(event))
        if "item_id" in event:
            event["item_id"] = f"rotated_{number}"
        if isinstance(event.get("item"), dict):
            event["item"]["id"] = f"rotated_item_{number}"
        response = event.get("response")
        if isinstance(response, dict):
            response["id"] = f"resp_{number}"
            for position, item in enumerate(response.get("output") or []):
                item["id"] = f"final_{position}"
        rotated.append(event)
    return rotated


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("chatlas__chat--chat-callbacks-1", id="two-calls"),
        pytest.param("vercel-ai__xai-text-with-reasoning-streaming-1", id="reasoning-text"),
        pytest.param("pydantic-ai__phase-streamed-on-part-start-1", id="reasoning-message-call"),
    ],
)
def test_rotating_ids_change_nothing_but_ids(name: str) -> None:
    events = load_events(name)
    _, plain = assemble(events)
    told, rotated = assemble(_rotate_ids(events))
    assert rotated.id == "resp_0"  # the first response object's
    assert rotated.text == plain.text
    assert rotated.tool_calls == plain.tool_calls
    assert [r.summary for r in rotated.reasoning] == [r.summary for r in plain.reasoning]
    assert [item["id"] for item in rotated.items] == [
        f"final_{i}" for i in range(len(rotated.items))
    ]
    assert joined(told, TextDelta) == (plain.text or "")


@pytest.mark.parametrize(
    "drop",
    [
        pytest.param({"response.created", "response.in_progress"}, id="no-created"),
        pytest.param({"response.output_item.added"}, id="no-added"),
        pytest.param({"response.content_part.added", "response.output_item.done"}, id="no-parts"),
    ],
)
def test_a_stream_joined_part_way_still_comes_whole(drop: set[str]) -> None:
    name = "pydantic-ai__phase-streamed-on-part-start-1"
    events = [e for e in load_events(name) if e["type"] not in drop]
    for event in events:
        event.pop("sequence_number", None)
    told, output = assemble(events)
    assert reduce_output(output)["output"] == RESPONSES_INDEX[name]["final"]["output"]
    assert joined(told, TextDelta) == output.text
    (call,) = output.tool_calls
    assert arguments_told(told, call.index) == call.arguments


def test_resumed_background_stream_takes_id_from_the_first_response() -> None:
    name = "pydantic-ai__background-mode-streaming-starting-after-vcr-1"
    events = load_events(name)
    _, output = assemble(events)
    first = next(e["response"] for e in events if "response" in e)
    assert output.id == first["id"]
    assert reduce_output(output)["output"] == RESPONSES_INDEX[name]["final"]["output"]


def _call_stream(arguments: list[str], terminal: dict[str, Any] | None) -> list[dict[str, Any]]:
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "write"}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {"id": "resp_1", "model": "m", "output": []}},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**item, "arguments": ""},
        },
    ]
    events += [
        {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": piece}
        for piece in arguments
    ]
    if terminal is not None:
        events.append(terminal)
    return events


def test_incomplete_response_lists_its_cut_call() -> None:
    terminal = {
        "type": "response.incomplete",
        "response": {
            "id": "resp_1",
            "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
            "output": [],
            "usage": {"input_tokens": 5, "output_tokens": 16, "total_tokens": 21},
        },
    }
    _, output = assemble(_call_stream(['{"path": "a', ".txt"], terminal))
    assert output.status == "incomplete"
    assert output.incomplete_reason == "max_output_tokens"
    assert output.finish_reason == "length"
    assert output.cut_calls == (0,)
    assert output.stream_error() is None  # not an error: the cut call is simply never run
    assert output.usage_summary == Usage(5, 16, 21)
    assert reduce_output(output)["output"] == [
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "write",
            "arguments": '{"path": "a.txt',
        }
    ]


def test_incomplete_response_keeps_calls_that_were_finished() -> None:
    done = {
        "type": "response.function_call_arguments.done",
        "output_index": 0,
        "arguments": '{"a": 1}',
    }
    terminal = {"type": "response.incomplete", "response": {"status": "incomplete"}}
    events = [*_call_stream(['{"a": 1}'], None), done, terminal]
    _, output = assemble(events)
    assert output.cut_calls == ()
    assert output.finish_reason == "length"


def test_a_stream_without_terminal_event_is_an_error_and_its_calls_cut() -> None:
    _, output = assemble(_call_stream(['{"a":', " 1}"], None))
    error = output.stream_error()
    assert isinstance(error, StreamError)
    assert "ended early" in str(error)
    assert output.cut_calls == (0,)
    assert output.status is None
    assert output.tool_calls[0].arguments == '{"a": 1}'


FAILED_ERROR = {"code": "server_error", "message": "The model failed to respond."}


@pytest.mark.parametrize(
    "events",
    [
        pytest.param(
            [
                {"type": "error", "code": "server_error", "message": FAILED_ERROR["message"]},
                {
                    "type": "response.failed",
                    "response": {"status": "failed", "error": FAILED_ERROR, "output": []},
                },
            ],
            id="error-event-then-failed",
        ),
        pytest.param(
            [
                {"type": "error", "error": {**FAILED_ERROR, "type": "server_error", "param": None}},
                {"type": "response.failed", "response": {"error": FAILED_ERROR, "usage": None}},
            ],
            id="nested-error-event",
        ),
        pytest.param(
            [{"type": "response.failed", "response": {"status": "failed", "error": FAILED_ERROR}}],
            id="failed-only",
        ),
        pytest.param([{"error": FAILED_ERROR}], id="bare-error-payload"),
    ],
)
def test_failures_come_out_typed(events: list[dict[str, Any]]) -> None:
    opening = _call_stream(['{"a": 1}'], None)
    told, output = assemble([*opening, *events])
    errors = [e for e in told if isinstance(e, ServerError)]
    assert [e.message for e in errors] == [FAILED_ERROR["message"]]  # once, not twice
    assert output.failure is not None
    assert output.failure.message == FAILED_ERROR["message"]
    assert output.failure.code == "server_error"
    assert len(output.errors) == 1
    error = output.stream_error()
    assert isinstance(error, StreamError)
    assert FAILED_ERROR["message"] in str(error)
    assert output.cut_calls == (0,)
    assert output.finish_reason is None
    document = reduce_output(output)
    assert document["errors"] == list(output.errors)
    if len(events) > 1 or "response" in events[0]:
        assert document["status"] == "failed"


def test_refusal_streams_as_refusal() -> None:
    events = [
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"type": "message", "id": "msg_1", "role": "assistant", "content": []},
        },
        {"type": "response.refusal.delta", "output_index": 0, "content_index": 0, "delta": "No, "},
        {"type": "response.refusal.delta", "output_index": 0, "content_index": 0, "delta": "sorry"},
        {
            "type": "response.refusal.done",
            "output_index": 0,
            "content_index": 0,
            "refusal": "No, sorry.",
        },
        {"type": "response.completed", "response": {"status": "completed", "output": []}},
    ]
    told, output = assemble(events)
    assert joined(told, RefusalDelta) == "No, sorry."
    assert output.refusal == "No, sorry."
    assert output.text == ""
    assert reduce_output(output)["output"] == [
        {"type": "message", "role": "assistant", "text": "", "refusal": "No, sorry."}
    ]


def test_unknown_items_and_events_are_carried_along() -> None:
    item = {"type": "hologram_call", "id": "hg_1", "status": "in_progress", "beams": [1, 2]}
    events = [
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.hologram_call.projecting", "output_index": 0, "item_id": "hg_1"},
        {"type": "response.hologram_call_beam.delta", "output_index": 0, "delta": "x"},
        {"type": "response.output_item.done", "output_index": 0, "item": {**item, "status": "ok"}},
        {"type": "response.completed", "response": {"status": "completed"}},
    ]
    told, output = assemble(events)
    assert told == []
    assert output.items == ({**item, "status": "ok"},)
    assert reduce_output(output)["output"] == [{"type": "hologram_call", "id": "hg_1"}]


def test_the_terminal_output_is_the_final_word() -> None:
    message = {"type": "message", "id": "msg_1", "role": "assistant"}
    events = [
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**message, "content": []},
        },
        {"type": "response.output_text.delta", "output_index": 0, "delta": "Hel"},
        {
            "type": "response.completed",
            "response": {
                "status": "completed",
                "output": [{**message, "content": [{"type": "output_text", "text": "Hello"}]}],
            },
        },
    ]
    told, output = assemble(events)
    assert output.text == "Hello"
    assert joined(told, TextDelta) == "Hello"  # the missing "lo" is sent on


def test_an_empty_terminal_item_never_wipes_out_streamed_text() -> None:
    message = {"type": "message", "id": "msg_1", "role": "assistant", "content": []}
    events = [
        {"type": "response.output_item.added", "output_index": 0, "item": message},
        {"type": "response.output_text.delta", "output_index": 0, "delta": "Hi"},
        {"type": "response.completed", "response": {"status": "completed", "output": [message]}},
    ]
    _, output = assemble(events)
    assert output.text == "Hi"
    assert output.items[0]["content"][0]["text"] == "Hi"


def test_oversized_arguments_are_dropped() -> None:
    events = _call_stream(['{"text": "', "x" * 50, '"}'], None)
    events.append({"type": "response.completed", "response": {"status": "completed"}})
    told, output = assemble(events, max_argument_size=20)
    (call,) = output.tool_calls
    assert call.oversized == 62
    assert call.arguments == "{}"
    assert arguments_told(told, 0) == '{"text": "'


def test_partial_arguments_off() -> None:
    told, _ = assemble(_call_stream(['{"a": ', "1}"], None), partial_arguments=False)
    assert [e.partial for e in told if isinstance(e, ToolCallDelta)] == [None, None]


def test_sdk_event_objects_are_read_too() -> None:
    from openai.types.responses import ResponseTextDeltaEvent

    event = ResponseTextDeltaEvent(
        type="response.output_text.delta",
        item_id="msg_1",
        output_index=0,
        content_index=0,
        delta="hi",
        logprobs=[],
        sequence_number=3,
    )
    told, output = assemble([event])
    assert told == [TextDelta(0, 0, "hi")]
    assert output.text == "hi"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        pytest.param([1, 2], "not an object", id="not-object"),
        pytest.param(
            {"type": "response.output_text.delta", "output_index": 0, "delta": 5},
            "not a string",
            id="text-delta-not-string",
        ),
        pytest.param(
            {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": {}},
            "not a string",
            id="arguments-delta-not-string",
        ),
    ],
)
def test_malformed_events_raise_stream_error(event: Any, message: str) -> None:
    with pytest.raises(StreamError, match=message):
        ResponsesAssembler().feed(event)


def test_deep_nesting_raises_no_recursion_error() -> None:
    deep: dict[str, Any] = {}
    for _ in range(100_000):
        deep = {"a": deep}
    events = [
        {"type": "response.output_item.added", "output_index": 0, "item": {"type": "x", "n": deep}},
        {"type": "error", "error": deep},
        {
            "type": "response.completed",
            "response": {"usage": deep, "output": [deep], "error": deep},
        },
    ]
    _, output = assemble(events)
    reduce_output(output)
    assert output.stream_error() is not None


def test_a_terminal_output_that_leaves_items_out_is_matched_by_type_and_id() -> None:
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": []}
    message = {"type": "message", "id": "msg_1", "role": "assistant"}
    part = {"type": "output_text", "text": "Hi"}
    events = [
        {"type": "response.output_item.added", "output_index": 0, "item": reasoning},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {**message, "content": []},
        },
        {"type": "response.output_text.delta", "output_index": 1, "delta": "Hi"},
        {
            "type": "response.completed",
            "response": {"status": "completed", "output": [{**message, "content": [part]}]},
        },
    ]
    told, output = assemble(events)
    assert output.text == "Hi"
    assert [item["type"] for item in output.items] == ["reasoning", "message"]
    assert joined(told, TextDelta) == "Hi"


@pytest.mark.parametrize(
    ("status", "cut"),
    [
        pytest.param("completed", (), id="listed-completed"),
        pytest.param("in_progress", (0,), id="listed-in-progress"),
        pytest.param("incomplete", (0,), id="listed-incomplete"),
    ],
)
def test_an_incomplete_response_runs_only_calls_it_lists_as_completed(
    status: str, cut: tuple[int, ...]
) -> None:
    call = {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}
    terminal = {
        "type": "response.incomplete",
        "response": {
            "status": "incomplete",
            "incomplete_details": {"reason": "content_filter"},
            "output": [{**call, "status": status}],
        },
    }
    _, output = assemble([terminal])
    assert output.cut_calls == cut
    assert output.finish_reason == "content_filter"
