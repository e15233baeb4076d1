"""Background responses on the Responses API: a cut stream is taken up again, not asked again.

The scripted model keeps each background response's events; a `Fault` cuts the first
answer mid-way, and the agent streams the rest with `GET /responses/{id}?stream=true
&starting_after=N` through the real `openai` client.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from agentstream import (
    Agent,
    Retries,
    SetupError,
    StepInterrupted,
    TextDelta,
    ToolCallDelta,
    tool,
)
from agentstream.testing import Fault, ModelRequest, Reply, ScriptedModel, ToolCall

from ._helpers import of
from ._streams import load_events

pytestmark = pytest.mark.anyio

FAST = Retries(backoff=0.001, max_backoff=0.002)
TEXT = "The answer is forty-two, as computed by the deep thought machine."


@tool
def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"notes on {topic}"


async def run(model: ScriptedModel, **options: Any) -> tuple[list[Any], Any]:
    agent = Agent(
        client=model.async_client(), model="m", api="responses", background=True,
        tools=[lookup], retries=FAST, **options,
    )  # fmt: skip
    events: list[Any] = []
    with anyio.fail_after(20):
        async with agent.stream("go") as running:
            async for event in running:
                events.append(event)
    return events, running.result


def shown(events: list[Any]) -> list[tuple[str, Any]]:
    """What the consumer saw stream: text and argument pieces, in order."""
    return [
        (type(e).__name__, e.text if isinstance(e, TextDelta) else e.delta)
        for e in events
        if isinstance(e, TextDelta | ToolCallDelta)
    ]


def posts(model: ScriptedModel) -> list[ModelRequest]:
    return [r for r in model.requests if r.method == "POST"]


def gets(model: ScriptedModel) -> list[ModelRequest]:
    return [r for r in model.requests if r.method == "GET"]


@pytest.mark.parametrize("cut", [pytest.param(3, id="early"), pytest.param(9, id="mid-call")])
async def test_a_cut_background_stream_resumes_from_its_sequence_number(cut: int) -> None:
    def replies(fault: Fault | None) -> list[Reply]:
        first = Reply(TEXT, tool_calls=[ToolCall("lookup", {"topic": "thought"})], fault=fault)
        return [first, Reply("Done.")]

    whole = ScriptedModel(replies(None))
    expected, _ = await run(whole)
    model = ScriptedModel(replies(Fault(drop_after=cut)))
    events, result = await run(model)

    assert result.output == "Done."
    assert shown(events) == shown(expected)  # nothing shown twice, nothing lost
    assert not of(events, StepInterrupted)
    assert len(posts(model)) == len(posts(whole)) == 2  # one generation per step
    [resumed] = gets(model)
    assert resumed.path == "/v1/responses/resp_scripted1"
    assert f"starting_after={cut - 1}" in resumed.query
    assert "stream=true" in resumed.query
    assert posts(model)[0].body["background"] is True
    tool_messages = [m["content"] for m in result.messages if m["role"] == "tool"]
    assert tool_messages == ["notes on thought"]


async def test_a_recorded_background_stream_cut_and_resumed_says_the_same() -> None:
    recorded = load_events("pydantic-ai__background-mode-streaming-vcr")
    whole, _ = await run(ScriptedModel([Reply(chunks=recorded)]))
    model = ScriptedModel([Reply(chunks=recorded, fault=Fault(drop_after=8))])
    events, result = await run(model)
    assert shown(events) == shown(whole)
    assert result.output == "".join(e.text for e in of(whole, TextDelta))
    assert len(posts(model)) == 1
    assert len(gets(model)) == 1


async def test_without_background_a_cut_stream_is_asked_again() -> None:
    model = ScriptedModel([Reply(TEXT, fault=Fault(drop_after=4)), Reply(TEXT)])
    agent = Agent(client=model.async_client(), model="m", api="responses", retries=FAST)
    result = await agent.run("go")
    assert result.output == TEXT
    assert len(posts(model)) == 2
    assert not gets(model)
    assert "background" not in posts(model)[0].body


async def test_a_resume_the_server_refuses_fails_the_attempt_and_it_is_retried() -> None:
    # The first answer is cut before any event: no id to resume, so it is asked again.
    model = ScriptedModel([Reply(TEXT, fault=Fault(drop_after=0)), Reply(TEXT)])
    events, result = await run(model)
    assert result.output == TEXT
    assert len(of(events, StepInterrupted)) == 1
    assert len(posts(model)) == 2


def test_background_needs_the_responses_api() -> None:
    with pytest.raises(SetupError, match="background"):
        Agent(client=ScriptedModel([]).async_client(), model="m", background=True)
