"""The limits of a run: tool calls per step and per run, argument and result sizes."""

from __future__ import annotations

from typing import Any

import pytest

from agentstream import (
    Agent,
    SetupError,
    StreamAssembler,
    ToolCallDelta,
    ToolCallInvalid,
    ToolCallReady,
    ToolFinished,
    tool,
)
from agentstream.testing import Reply, ScriptedModel, ToolCall

from ._helpers import Recorder, of, run_events

pytestmark = pytest.mark.anyio


def tool_messages(run: Any) -> list[str]:
    return [m["content"] for m in run.result.messages if m["role"] == "tool"]


async def test_calls_past_the_step_limit_are_refused_and_the_model_told() -> None:
    recorder = Recorder()
    model = ScriptedModel([Reply(tool_calls=[ToolCall("act")] * 3), Reply("done")])
    events, run = await run_events(model, recorder.tool, max_tool_calls_per_step=2)

    assert recorder.calls == 2
    assert [e.index for e in of(events, ToolCallReady)] == [0, 1]
    [refused] = of(events, ToolCallInvalid)
    assert refused.index == 2
    assert "at most 2 tool calls" in refused.error
    assert tool_messages(run) == ["ok", "ok", f"Invalid tool call: {refused.error}"]
    assert run.result.stop_reason == "answer"


async def test_the_run_stops_at_its_limit_of_tool_calls() -> None:
    recorder = Recorder()
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("act")] * 2),
            Reply(tool_calls=[ToolCall("act")] * 2),
            Reply("never asked for"),
        ]
    )
    events, run = await run_events(model, recorder.tool, max_tool_calls=3)

    assert recorder.calls == 3
    assert len(model.requests) == 2
    [refused] = of(events, ToolCallInvalid)
    assert (refused.step, refused.index) == (2, 1)
    assert "limit of tool calls" in refused.error
    assert run.result.stop_reason == "max_tool_calls"
    assert len(tool_messages(run)) == 4  # every call answered


async def test_with_final_answer_the_run_asks_once_more_without_tools() -> None:
    recorder = Recorder()
    model = ScriptedModel([Reply(tool_calls=[ToolCall("act")] * 2), Reply("here is what I found")])
    _, run = await run_events(model, recorder.tool, max_tool_calls=1, final_answer=True)

    assert recorder.calls == 1
    assert model.requests[1].body["tool_choice"] == "none"
    assert run.result.output == "here is what I found"
    assert run.result.stop_reason == "max_tool_calls"


async def test_arguments_past_the_size_limit_are_refused_without_being_kept() -> None:
    recorder = Recorder()

    @tool
    def write(text: str) -> str:
        """Write text."""
        recorder.calls += 1
        return "written"

    big = ToolCall("write", {"text": "x" * 5000})
    model = ScriptedModel([Reply(tool_calls=[big], piece_size=100), Reply("sorry")])
    events, run = await run_events(model, write, max_argument_size=1000)

    assert recorder.calls == 0
    streamed = sum(len(e.delta) for e in of(events, ToolCallDelta))
    assert streamed <= 1000  # nothing past the limit is passed on
    [refused] = of(events, ToolCallInvalid)
    assert f"{len(big.arguments_json)} characters" in refused.error
    assert "at most 1000" in refused.error
    assert run.result.messages[1]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert run.result.output == "sorry"


def test_the_assembler_drops_arguments_past_its_limit() -> None:
    assembler = StreamAssembler(max_argument_size=64)
    pieces = ['{"text": "', *(["abcd"] * 10_000), '"}']
    first = {"index": 0, "id": "c1", "function": {"name": "write", "arguments": ""}}
    assembler.feed({"choices": [{"delta": {"tool_calls": [first]}}]})
    deltas = 0
    for piece in pieces:
        fragment = {"index": 0, "function": {"arguments": piece}}
        deltas += len(assembler.feed({"choices": [{"delta": {"tool_calls": [fragment]}}]}))
    assembler.feed({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]})

    [call] = assembler.finish().message.tool_calls
    assert call.oversized == sum(map(len, pieces))
    assert call.arguments == "{}"
    assert deltas == 14  # the pieces that fit (10 + 4 * 13 + 4 = 62 <= 64)


async def test_long_results_are_cut_with_a_note() -> None:
    @tool
    def dump() -> str:
        """Dump a lot."""
        return "y" * 500

    model = ScriptedModel([Reply(tool_calls=[ToolCall("dump")]), Reply("done")])
    events, run = await run_events(model, dump, max_result_size=50)

    [finished] = of(events, ToolFinished)
    assert finished.truncated
    assert finished.value == "y" * 500  # the program still gets the whole value
    [content] = tool_messages(run)
    assert content.startswith("y" * 50 + "\n[truncated")
    assert "500 characters" in content
    assert content == finished.output


async def test_results_within_the_limit_are_untouched() -> None:
    recorder = Recorder()
    model = ScriptedModel([Reply(tool_calls=[ToolCall("act")]), Reply("done")])
    events, run = await run_events(model, recorder.tool, max_result_size=2)
    [finished] = of(events, ToolFinished)
    assert not finished.truncated
    assert tool_messages(run) == ["ok"]


@pytest.mark.parametrize(
    "option",
    ["max_tool_calls", "max_tool_calls_per_step", "max_argument_size", "max_result_size"],
)
@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_bad_limits_are_setup_errors(option: str, value: Any) -> None:
    model = ScriptedModel([])
    with pytest.raises(SetupError, match=option):
        Agent(client=model.async_client, model="m", **{option: value})
