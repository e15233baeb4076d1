"""`replay_responses`: a recorded Responses stream (JSON lines or raw SSE) to its document."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentstream import StreamError
from agentstream.wire.responses._replay import is_responses_stream, read_responses, replay_responses

from ._streams import RESPONSES_INDEX, responses_params, responses_path, stream_path


def _lines(name: str) -> list[str]:
    return responses_path(name).read_text().splitlines()


def _sse(lines: list[str], *, named: bool = True, newline: str = "\n") -> list[str]:
    """A raw SSE body as real servers send it: `event:` lines, a comment, `[DONE]`."""
    body = [": OPENROUTER PROCESSING", ""]
    for line in lines:
        if named:
            body.append(f"event: {json.loads(line)['type']}")
        body += [f"data: {line}", ""]
    body += ["data: [DONE]", ""]
    return newline.join(body).split("\n")


@pytest.mark.parametrize("name", responses_params())
def test_replay_gives_the_final(name: str) -> None:
    replay = replay_responses(_lines(name))
    assert replay is not None
    final = RESPONSES_INDEX[name]["final"]
    assert replay.document == {
        "status": final["status"],
        "output": final["output"],
        "usage": final["usage"],
        "errors": [],
    }
    json.dumps(replay.document)  # printable as it is
    json.dumps(replay.events)


@pytest.mark.parametrize(
    "form",
    [
        pytest.param({"named": True}, id="event-lines"),
        pytest.param({"named": False}, id="data-only"),
        pytest.param({"named": True, "newline": "\r\n"}, id="crlf"),
    ],
)
@pytest.mark.parametrize(
    "name",
    [
        "vercel-ai__lmstudio-tool-call-1",
        "pydantic-ai__raw-cot-stream-openrouter",
        "chatlas__chat--chat-callbacks-1",
    ],
)
def test_replay_reads_a_raw_sse_body(name: str, form: dict[str, Any]) -> None:
    replay = replay_responses(_sse(_lines(name), **form))
    assert replay is not None
    assert replay.document["output"] == RESPONSES_INDEX[name]["final"]["output"]
    plain = replay_responses(_lines(name))
    assert plain is not None
    assert replay.events == plain.events


def test_an_sse_payload_without_type_takes_the_event_name() -> None:
    body = [
        "event: response.output_text.delta",
        'data: {"output_index": 0, "delta": "Hi"}',
        "",
        "event: response.completed",
        'data: {"response": {"status": "completed"}}',
        "",
    ]
    replay = replay_responses(body)
    assert replay is not None
    assert replay.document["output"] == [{"type": "message", "role": "assistant", "text": "Hi"}]
    assert replay.document["status"] == "completed"


def test_replay_events_are_the_agentstream_events() -> None:
    replay = replay_responses(_lines("vercel-ai__lmstudio-tool-call-1"))
    assert replay is not None
    kinds = [event["type"] for event in replay.events]
    assert kinds[0] == "reasoning_delta"
    assert kinds[-2:] == ["tool_call_started", "tool_call_delta"]
    assert replay.events[-1]["partial"] == {"location": "San Francisco"}
    assert replay.events[-1]["index"] == 2


def test_a_failed_stream_replays_with_its_errors() -> None:
    error = {"code": "server_error", "message": "The model failed."}
    lines = [
        json.dumps({"type": "response.created", "response": {"id": "r", "status": "queued"}}),
        json.dumps({"type": "error", **error, "param": None}),
        json.dumps({"type": "response.failed", "response": {"status": "failed", "error": error}}),
    ]
    replay = replay_responses(lines)
    assert replay is not None
    assert replay.document["status"] == "failed"
    assert replay.document["errors"] == [{"type": "error", **error, "param": None}]
    assert [event["type"] for event in replay.events] == ["server_error"]
    assert replay.output.stream_error() is not None


def test_chat_recordings_are_not_responses() -> None:
    lines = stream_path("openai-python__parallel-tools-weather-stock").read_text().splitlines()
    assert replay_responses(lines) is None
    assert not is_responses_stream([{"error": {"message": "x"}}])


def test_replayed_call_ids_are_stable() -> None:
    item = {"type": "function_call", "name": "f", "arguments": "{}"}
    lines = [
        json.dumps({"type": "response.output_item.done", "output_index": 0, "item": item}),
        json.dumps({"type": "response.completed", "response": {"status": "completed"}}),
    ]
    first, second = replay_responses(lines), replay_responses(lines)
    assert first is not None
    assert second is not None
    assert first.output.tool_calls[0].id == "call_replay_1"
    assert first.document == second.document


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        pytest.param(['{"type": "response.created"}', "{nope"], "line 2: not JSON", id="bad-json"),
        pytest.param(["[1, 2]"], "line 1: not a JSON object", id="not-object"),
        pytest.param(["data: {nope", ""], "event 1: not JSON", id="bad-sse"),
        pytest.param(["[" * 100_000], "not JSON", id="deep"),
    ],
)
def test_malformed_recordings_raise_stream_error(lines: list[str], message: str) -> None:
    with pytest.raises(StreamError, match=message):
        read_responses(lines)
