"""`Agent.stream_sync`: a run's events for synchronous code."""

from __future__ import annotations

import threading

import anyio
import pytest

from agentstream import Agent, ModelError, Retries, RunFailed, SyncRun, tool
from agentstream.testing import Fault, Reply, ScriptedModel, ToolCall


@tool
def get_weather(location: str) -> str:
    """Get the weather in a city.

    Args:
        location: The city.
    """
    return f"sunny in {location}"


def weather_model() -> ScriptedModel:
    return ScriptedModel(
        [
            Reply(
                tool_calls=[ToolCall("get_weather", {"location": c}) for c in ("Paris", "Tokyo")]
            ),
            Reply("Sunny in both."),
        ]
    )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_events_in_order_then_the_result(backend: str) -> None:
    agent = Agent(client=weather_model().async_client, model="m", tools=[get_weather])
    with agent.stream_sync("weather?", backend=backend) as run:
        assert isinstance(run, SyncRun)
        kinds = [event.type for event in run]
    assert kinds[0] == "run_started"
    assert kinds[-1] == "run_finished"
    assert kinds.count("tool_finished") == 2
    assert run.result.output == "Sunny in both."


def test_a_plain_for_loop_works_and_ends_the_thread() -> None:
    agent = Agent(client=weather_model().async_client, model="m", tools=[get_weather])
    before = threading.active_count()
    run = agent.stream_sync("weather?")
    texts = [event.text for event in run if event.type == "text_delta"]
    assert "".join(texts) == "Sunny in both."
    assert threading.active_count() == before
    with pytest.raises(RuntimeError, match="closed"):
        next(run)


def test_leaving_early_cancels_the_running_tools() -> None:
    started, cancelled = threading.Event(), threading.Event()

    @tool
    async def slow(location: str) -> str:
        """Wait forever.

        Args:
            location: The city.
        """
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        return ""

    model = ScriptedModel([Reply(tool_calls=[ToolCall("slow", {"location": "Paris"})])])
    agent = Agent(client=model.async_client, model="m", tools=[slow])
    with agent.stream_sync("go") as run:
        for event in run:
            if event.type == "tool_started":
                assert started.wait(5)
                break
    assert cancelled.is_set()
    with pytest.raises(RuntimeError, match="not finished"):
        _ = run.result


def test_a_failed_run_raises_its_error_after_the_event() -> None:
    model = ScriptedModel([Reply(fault=Fault(status=500, message="down"))])
    agent = Agent(client=model.async_client, model="m", retries=Retries(max_retries=0))
    seen = []
    with pytest.raises(ModelError), agent.stream_sync("hi") as run:
        for event in run:
            seen.append(event)
    assert isinstance(seen[-1], RunFailed)
