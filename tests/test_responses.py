"""`ResponsesAssembler` on every recorded Responses stream, and on variations of them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentstream import (
    ReasoningDelta,
    RefusalDelta,
    ServerError,
    TextDelta,
    ToolCallDelta,
    ToolCallStarted,
)
from agentstream.wire._partial_call import _SMALL_ARGUMENTS
from agentstream.wire.responses._assemble import ResponsesAssembler
from agentstream.wire.responses._output import reduce_output

from ._assembly import arguments_told, assemble, joined
from ._streams import RESPONSES_INDEX, load_events, responses_params


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


@pytest.mark.parametrize("name", responses_params())
def test_the_stream_error_is_told_without_assembling_the_output(name: str) -> None:
    # `check_complete` asks the assembler, which does not build the output for it:
    # the same answer as the output's, whole, cut anywhere, or failed.
    events = load_events(name)
    failed = {"type": "error", "error": {"message": "overloaded", "code": "server_error"}}
    for stream in (events, events[: len(events) // 2], events[:1], [], [*events[:3], failed]):
        assembler = ResponsesAssembler()
        for event in stream:
            assembler.feed(event)
        told, whole = assembler.stream_error(), assembler.finish().stream_error()
        assert (told and (str(told), told.body)) == (whole and (str(whole), whole.body))
    assert ResponsesAssembler().stream_error() is not None
