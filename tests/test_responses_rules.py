"""`ResponsesAssembler` on the rules real servers demand, one made-up stream per rule:
failures, incomplete responses, refusals, unknown items, finished values, limits, hostile
shapes."""

from __future__ import annotations

from typing import Any

import pytest

from agentstream import (
    RefusalDelta,
    ResponsesAssembler,
    ServerError,
    StreamError,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from agentstream.wire.responses._output import reduce_output

from ._assembly import arguments_told, assemble, joined


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
