"""`agentstream.web`'s sans-I/O parts: the UI stream encoder and the message conversion."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

import agentstream
import agentstream.web
from agentstream import Agent, Event, Retries, RunError, tool
from agentstream.testing import Fault, Reply, ScriptedModel, ToolCall
from agentstream.web import MessageError, UIStreamEncoder, safe_event_dict, to_openai, to_ui

pytestmark = pytest.mark.anyio


@tool
def get_weather(location: str) -> str:
    """Get the weather in a city.

    Args:
        location: The city.
    """
    if location == "Atlantis":
        raise OSError("cannot reach /srv/weather/atlantis.db")
    return f"sunny in {location}"


def check_protocol(chunks: Sequence[dict[str, Any]]) -> None:
    """The ordering rules the `ai` package's reader enforces (and a few of ours)."""
    assert chunks[0]["type"] == "start"
    assert chunks[-1]["type"] == "finish" or chunks[-1]["type"] == "abort"
    open_text: set[str] = set()
    open_calls: set[str] = set()
    for chunk in chunks:
        kind = chunk["type"]
        if kind in ("text-start", "reasoning-start"):
            assert chunk["id"] not in open_text
            open_text.add(chunk["id"])
        elif kind in ("text-delta", "reasoning-delta", "text-end", "reasoning-end"):
            assert chunk["id"] in open_text, chunk
            if kind.endswith("-end"):
                open_text.remove(chunk["id"])
        elif kind == "tool-input-start":
            open_calls.add(chunk["toolCallId"])
        elif kind == "tool-input-delta":
            assert chunk["toolCallId"] in open_calls
        elif kind == "reset-step":
            open_text.clear()
        elif kind in ("finish-step", "finish"):
            assert not open_text, f"{kind} with open parts {open_text}"
        assert "Traceback" not in json.dumps(chunk)


async def run_events(agent: Agent, prompt: str) -> list[Event]:
    events: list[Event] = []
    try:
        async with agent.stream(prompt) as run:
            async for event in run:
                events.append(event)
    except RunError:
        pass
    return events


def encode(events: Sequence[Event]) -> list[dict[str, Any]]:
    encoder = UIStreamEncoder("msg_1")
    return [chunk for i, event in enumerate(events) for chunk in encoder.feed(event, i / 10)]


async def test_a_run_with_tools_becomes_the_ui_stream(anyio_backend: object) -> None:
    model = ScriptedModel(
        [
            Reply(
                reasoning="Two cities.",
                tool_calls=[ToolCall("get_weather", {"location": c}) for c in ("Paris", "Tokyo")],
            ),
            Reply("Sunny in both."),
        ]
    )
    agent = Agent(client=model.async_client, model="m", tools=[get_weather])
    chunks = encode(await run_events(agent, "weather?"))
    check_protocol(chunks)
    kinds = [chunk["type"] for chunk in chunks]
    assert kinds.count("start-step") == kinds.count("finish-step") == 2
    assert kinds.count("tool-input-start") == 2
    available = [c for c in chunks if c["type"] == "tool-input-available"]
    assert [c["input"] for c in available] == [{"location": "Paris"}, {"location": "Tokyo"}]
    outputs = [c["output"] for c in chunks if c["type"] == "tool-output-available"]
    assert sorted(outputs) == ["sunny in Paris", "sunny in Tokyo"]
    ids = {c["toolCallId"] for c in chunks if c["type"].startswith("tool-")}
    assert len(ids) == 2  # one id per call, from its start to its output
    reasoning = "".join(c["delta"] for c in chunks if c["type"] == "reasoning-delta")
    text = "".join(c["delta"] for c in chunks if c["type"] == "text-delta")
    assert (reasoning, text) == ("Two cities.", "Sunny in both.")
    finish = chunks[-1]
    assert finish["finishReason"] == "stop"
    assert finish["messageMetadata"]["usage"]["totalTokens"] > 0
    assert [s["step"] for s in finish["messageMetadata"]["steps"]] == [1, 2]
    timings = [c["data"]["kind"] for c in chunks if c["type"] == "data-agentstream"]
    assert timings.count("tool_started") == timings.count("tool_finished") == 2
    assert all(c["transient"] for c in chunks if c["type"] == "data-agentstream")


async def test_a_failing_tool_is_an_output_error_without_traceback(anyio_backend: object) -> None:
    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("get_weather", {"location": "Atlantis"})]), Reply("Sorry.")]
    )
    agent = Agent(client=model.async_client, model="m", tools=[get_weather])
    events = await run_events(agent, "weather in Atlantis?")
    chunks = encode(events)
    check_protocol(chunks)
    (error,) = [c for c in chunks if c["type"] == "tool-output-error"]
    assert "cannot reach" in error["errorText"]
    finished = next(safe_event_dict(e) for e in events if e.type == "tool_finished")
    assert finished["error"] == {
        "type": "OSError",
        "message": "cannot reach /srv/weather/atlantis.db",
    }


async def test_an_interrupted_step_is_reset_and_a_failed_run_says_why(
    anyio_backend: object,
) -> None:
    model = ScriptedModel(
        [
            Reply("Half an ans", fault=Fault(drop_after=2)),
            Reply("A whole answer."),
            Reply(fault=Fault(status=400, message="bad request")),
        ]
    )
    agent = Agent(client=model.async_client, model="m", retries=Retries(max_retries=1, backoff=0.0))
    chunks = encode(await run_events(agent, "hi"))
    check_protocol(chunks)
    kinds = [chunk["type"] for chunk in chunks]
    assert "reset-step" in kinds
    after_reset = kinds[kinds.index("reset-step") :]
    assert after_reset.count("start-step") == 1  # the step streams again
    failed = encode(await run_events(agent, "again"))
    check_protocol(failed)
    assert failed[-1] == {"type": "finish", "finishReason": "error"}
    (error,) = [c for c in failed if c["type"] == "error"]
    assert error["errorText"].startswith("ModelError: ")
    assert "bad request" in error["errorText"]


async def test_a_fallback_and_a_usage_limit_reach_the_ui_stream(anyio_backend: object) -> None:
    from agentstream import UsageLimits

    def answer(request: Any) -> Reply:
        if request.model == "big":
            return Reply(fault=Fault(status=503))
        return Reply(tool_calls=[ToolCall("get_weather", {"location": "Paris"})])

    model = ScriptedModel(answer)
    agent = Agent(
        client=model.async_client(), model="big", fallback=["small"], tools=[get_weather],
        retries=Retries(max_retries=0), limits=UsageLimits(requests=1),
    )  # fmt: skip
    chunks = encode(await run_events(agent, "weather?"))
    check_protocol(chunks)
    data = [c["data"] for c in chunks if c["type"] == "data-agentstream"]
    [used] = [d for d in data if d["kind"] == "fallback_used"]
    assert (used["model"], used["failedModel"]) == ("small", "big")
    assert "503" not in json.dumps(used)  # the error stays on the server
    [limit] = [d for d in data if d["kind"] == "usage_limit_reached"]
    assert (limit["limit"], limit["value"], limit["maximum"]) == ("requests", 2, 1)
    assert chunks[-1]["messageMetadata"]["stopReason"] == "usage_limit"


def test_the_encoder_stops_cleanly() -> None:
    encoder = UIStreamEncoder("m")
    from agentstream import RunStarted, StepStarted, TextDelta

    chunks = [*encoder.feed(RunStarted("r", "m", ())), *encoder.feed(StepStarted(1))]
    chunks += encoder.feed(TextDelta(1, 0, "<img src=x onerror=alert(1)>"))
    chunks += encoder.stopped("stopped by the user")
    check_protocol(chunks)
    assert chunks[-3] == {"type": "text-end", "id": "m-1-1"}
    assert chunks[-1] == {"type": "abort", "reason": "stopped by the user"}
    assert encoder.finished


UI_CONVERSATION: list[dict[str, Any]] = [
    {"id": "1", "role": "user", "parts": [{"type": "text", "text": "Weather in Paris?"}]},
    {
        "id": "2",
        "role": "assistant",
        "parts": [
            {"type": "step-start"},
            {"type": "reasoning", "text": "A tool fits."},
            {
                "type": "tool-get_weather",
                "toolCallId": "c1",
                "state": "output-available",
                "input": {"location": "Paris"},
                "output": "sunny in Paris",
            },
            {
                "type": "tool-get_weather",
                "toolCallId": "c2",
                "state": "output-error",
                "input": {"location": "Atlantis"},
                "errorText": "no such city",
            },
            {
                "type": "dynamic-tool",
                "toolName": "clock",
                "toolCallId": "c3",
                "state": "input-available",
                "input": {},
            },
            {"type": "step-start"},
            {"type": "text", "text": "Sunny."},
        ],
    },
    {"id": "3", "role": "user", "parts": [{"type": "text", "text": "Thanks"}]},
]


def test_ui_messages_become_openai_messages() -> None:
    messages = to_openai(UI_CONVERSATION)
    assert [m["role"] for m in messages] == [
        "user",
        "assistant",
        "tool",
        "tool",
        "tool",
        "assistant",
        "user",
    ]
    calls = messages[1]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_weather", "clock"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"location": "Paris"}
    assert messages[1]["content"] is None
    assert [m["content"] for m in messages[2:5]] == [
        "sunny in Paris",
        "no such city",
        "not run: the conversation holds no result for this call",
    ]
    assert messages[5] == {"role": "assistant", "content": "Sunny."}


def test_openai_messages_become_ui_messages_and_back() -> None:
    messages = to_openai(UI_CONVERSATION)
    ui = to_ui(messages)
    assert [m["role"] for m in ui] == ["user", "assistant", "user"]
    tool_parts = [p for p in ui[1]["parts"] if p["type"].startswith("tool-")]
    assert tool_parts[0]["output"] == "sunny in Paris"
    assert to_openai(ui) == messages


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([], id="empty"),
        pytest.param("hi", id="not-a-list"),
        pytest.param([{"role": "robot", "parts": []}], id="bad-role"),
        pytest.param([{"role": "user", "parts": "hi"}], id="parts-not-a-list"),
    ],
)
def test_unreadable_ui_messages_are_refused(messages: object) -> None:
    with pytest.raises(MessageError):
        to_openai(messages)


def test_web_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(agentstream.web).items()
        if not name.startswith("_") and name != "annotations" and not isinstance(value, type(json))
    }
    assert sorted(agentstream.web.__all__) == agentstream.web.__all__
    assert set(agentstream.web.__all__) == public


def test_the_core_does_not_import_the_web_package() -> None:
    import subprocess
    import sys

    code = (
        "import agentstream, sys; "
        "print('agentstream.web' in sys.modules, 'starlette' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_the_web_stream_shows_a_compaction_as_a_timing_part() -> None:
    encoder = UIStreamEncoder("m1")
    (part,) = encoder.feed(agentstream.ContextCompacted(3, 2, 1, 0, 2_500, 1_400), 1.5)
    assert part["type"] == "data-agentstream"
    assert part["data"] == {
        "kind": "context_compacted", "t": 1.5, "step": 3, "dropped": 2, "shortened": 1,
    }  # fmt: skip
