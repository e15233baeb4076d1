"""Each time limit of a run, driven by stalls of the scripted model and slow tools."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import openai
import pytest

from agentstream import (
    Agent,
    RunTimeout,
    StreamError,
    TextDelta,
    Timeouts,
    ToolFinished,
    ToolStarted,
    tool,
)
from agentstream.testing import Fault, Reply, ScriptedModel, ToolCall, serve

from ._helpers import NO_RETRIES, Recorder

pytestmark = pytest.mark.anyio


async def run_events(agent: Agent, prompt: str = "go") -> tuple[list[Any], Any]:
    events: list[Any] = []
    with anyio.fail_after(20):  # a broken limit must fail the test, not hang it
        async with agent.stream(prompt) as run:
            async for event in run:
                events.append(event)
    return events, run


@pytest.mark.parametrize(
    ("fault", "timeouts", "limit"),
    [
        pytest.param(
            Fault(stall_after=0, stall_seconds=30), Timeouts(first_chunk=0.2), "first_chunk",
            id="first-chunk",
        ),
        pytest.param(
            Fault(stall_after=2, stall_seconds=30), Timeouts(idle=0.2), "idle", id="idle"
        ),
        pytest.param(
            Fault(stall_after=2, stall_seconds=30), Timeouts(step=0.3), "step", id="step"
        ),
        pytest.param(
            Fault(stall_after=2, stall_seconds=30), Timeouts(run=0.3), "run", id="run"
        ),
        # `first_chunk` at most `idle`: the gaps are bounded by the HTTP read timeout.
        pytest.param(
            Fault(stall_after=2, stall_seconds=30), Timeouts(first_chunk=0.2, idle=0.2),
            "idle", id="idle-as-read-timeout",
        ),
        pytest.param(
            Fault(stall_after=0, stall_seconds=30), Timeouts(first_chunk=0.2, idle=0.2),
            "first_chunk", id="first-chunk-with-read-timeout",
        ),
        # A stall that begins before the step's end, with an `idle` longer than the test
        # may last (`run_events`): the step's end ends it, not the read timeout.
        pytest.param(
            Fault(stall_after=2, stall_seconds=90),
            Timeouts(first_chunk=60, idle=60, step=0.4), "step", id="step-before-idle",
        ),
        pytest.param(
            Fault(stall_after=2, stall_seconds=90),
            Timeouts(first_chunk=60, idle=60, run=0.4), "run", id="run-before-idle",
        ),
        # `first_chunk` longer than `idle`: the read timeout would cut the first wait
        # short, so each wait has a scope; a slow first chunk is allowed its own limit.
        pytest.param(
            Fault(stall_after=2, stall_seconds=30), Timeouts(first_chunk=5, idle=0.2),
            "idle", id="idle-shorter-than-first-chunk",
        ),
    ],
)  # fmt: skip
async def test_model_limits_fail_the_run(fault: Fault, timeouts: Timeouts, limit: str) -> None:
    recorder = Recorder()

    model = ScriptedModel([Reply(tool_calls=[ToolCall("act")], fault=fault)])
    agent = Agent(
        client=model.async_client(), model="m", tools=[recorder.tool], timeouts=timeouts,
        retries=NO_RETRIES,
    )  # fmt: skip
    with pytest.raises(RunTimeout) as info:
        await run_events(agent)
    assert info.value.limit == limit
    assert not recorder.ran


async def test_idle_limit_allows_a_slow_but_steady_stream() -> None:
    model = ScriptedModel([Reply("one two three four")], tokens_per_second=50)
    agent = Agent(client=model.async_client(), model="m", timeouts=Timeouts(idle=1.0))
    _, run = await run_events(agent)
    assert run.result.output == "one two three four"


async def test_each_chunk_resets_the_idle_limit_but_not_the_step_limit() -> None:
    # Eight chunks 0.25 s apart: the stream lasts past both limits, each gap within idle.
    steady = ScriptedModel([Reply("a b c d e f g h")], tokens_per_second=4)
    agent = Agent(client=steady.async_client(), model="m", timeouts=Timeouts(idle=1.0))
    _, run = await run_events(agent)
    assert run.result.output == "a b c d e f g h"

    steady = ScriptedModel([Reply("a b c d e f g h")], tokens_per_second=4)
    agent = Agent(
        client=steady.async_client(), model="m", timeouts=Timeouts(idle=1.0, step=1.0),
        retries=NO_RETRIES,
    )  # fmt: skip
    with pytest.raises(RunTimeout) as info:
        await run_events(agent)
    assert info.value.limit == "step"


@pytest.mark.parametrize(
    "timeouts",
    [
        pytest.param(Timeouts(first_chunk=1.0, idle=1.0, step=1.0), id="read-timeout"),
        pytest.param(Timeouts(idle=1.0, step=1.0), id="scope-per-wait"),
    ],
)
async def test_a_steady_stream_still_ends_at_the_step_limit(timeouts: Timeouts) -> None:
    # Eight chunks 0.25 s apart: no gap reaches idle, the stream outlasts the step; the
    # last second before the step's end is read with its deadline, not the read timeout.
    steady = ScriptedModel([Reply("a b c d e f g h")], tokens_per_second=4)
    agent = Agent(client=steady.async_client(), model="m", timeouts=timeouts, retries=NO_RETRIES)
    with pytest.raises(RunTimeout) as info:
        await run_events(agent)
    assert info.value.limit == "step"


async def test_a_slow_first_chunk_within_its_limit_is_not_cut_by_idle() -> None:
    # The first chunk takes longer than `idle` but less than `first_chunk`.
    model = ScriptedModel([Reply("a b", fault=Fault(stall_after=0, stall_seconds=0.6))])
    agent = Agent(
        client=model.async_client(), model="m", timeouts=Timeouts(first_chunk=5, idle=0.3),
        retries=NO_RETRIES,
    )  # fmt: skip
    _, run = await run_events(agent)
    assert run.result.output == "a b"


async def test_a_shorter_read_timeout_of_the_callers_stays() -> None:
    # The request's own `timeout` (0.2 s) is shorter than `idle`: it is kept, and ends
    # the stream as a broken one, as it would without time limits.
    model = ScriptedModel([Reply("a b c d", fault=Fault(stall_after=2, stall_seconds=30))])
    agent = Agent(
        client=model.async_client(), model="m", timeouts=Timeouts(first_chunk=5, idle=5),
        retries=NO_RETRIES, timeout=0.2,
    )  # fmt: skip
    with pytest.raises(StreamError, match="ReadTimeout"):
        await run_events(agent)


@pytest.mark.parametrize(
    ("fault", "limit"),
    [
        pytest.param(Fault(stall_after=0, stall_seconds=30), "first_chunk", id="first-chunk"),
        pytest.param(Fault(stall_after=2, stall_seconds=30), "idle", id="idle"),
    ],
)
async def test_limits_hold_over_a_real_socket(fault: Fault, limit: str) -> None:
    # The HTTP client's own read timeout over a real connection, not the scripted transport's.
    model = ScriptedModel([Reply("a b c d", fault=fault)])
    async with anyio.create_task_group() as server:
        port = await server.start(serve, model)
        client = openai.AsyncOpenAI(
            api_key="k", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
        )
        agent = Agent(
            client=client, model="m", timeouts=Timeouts(first_chunk=0.3, idle=0.3),
            retries=NO_RETRIES,
        )  # fmt: skip
        try:
            with pytest.raises(RunTimeout) as info:
                await run_events(agent)
        finally:
            await client.close()
            server.cancel_scope.cancel()
    assert info.value.limit == limit


@pytest.mark.parametrize(
    "timeouts",
    [
        pytest.param(Timeouts(first_chunk=0.2, idle=2.0), id="with-idle"),
        pytest.param(Timeouts(first_chunk=0.2), id="alone"),
    ],
)
async def test_first_chunk_limit_applies_to_the_first_chunk_only(timeouts: Timeouts) -> None:
    # A quick first chunk, then gaps longer than `first_chunk` (within `idle`, if set).
    model = ScriptedModel([Reply("a b c d")], tokens_per_second=2.5)
    agent = Agent(client=model.async_client(), model="m", timeouts=timeouts)
    _, run = await run_events(agent)
    assert run.result.output == "a b c d"


async def test_a_stream_left_mid_way_leaves_the_callers_scopes_intact() -> None:
    # The limits' cancel scopes never stay open across an event handed to the caller,
    # so a scope the caller opens around the loop and leaves early closes cleanly.
    model = ScriptedModel([Reply("a b c d e f")])
    agent = Agent(client=model.async_client(), model="m", timeouts=Timeouts(idle=5.0, step=9.0))
    async with agent.stream("go") as run:
        with anyio.move_on_after(10):
            async for event in run:
                if isinstance(event, TextDelta):
                    break
        async with anyio.create_task_group():
            await anyio.sleep(0)
    with pytest.raises(RuntimeError, match="not finished"):
        _ = run.result


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_tool_past_its_limit_is_stopped_and_the_model_told(kind: str) -> None:
    release = threading.Event()

    @tool
    async def slow_async() -> str:
        """Take long."""
        await anyio.sleep(30)
        return "never"

    @tool
    def slow_sync() -> str:
        """Block long."""
        release.wait(30)
        return "never"

    chosen = slow_async if kind == "async" else slow_sync
    model = ScriptedModel([Reply(tool_calls=[ToolCall(chosen.name, id="c1")]), Reply("Sorry.")])
    agent = Agent(
        client=model.async_client(), model="m", tools=[chosen], timeouts=Timeouts(tool=0.2)
    )
    try:
        events, run = await run_events(agent)
    finally:
        release.set()
    finished = next(e for e in events if isinstance(e, ToolFinished))
    assert isinstance(finished.error, TimeoutError)
    assert finished.output == "TimeoutError: the tool did not finish within 0.2 s and was stopped"
    assert model.requests[1].messages[-1] == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": finished.output,
    }
    assert run.result.output == "Sorry."


async def test_run_limit_stops_a_tool_then_fails_the_run() -> None:
    @tool
    async def slow() -> str:
        """Take long."""
        await anyio.sleep(30)
        return "never"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("slow", id="c1")]), Reply("late")])
    agent = Agent(client=model.async_client(), model="m", tools=[slow], timeouts=Timeouts(run=0.3))
    events: list[Any] = []
    with pytest.raises(RunTimeout) as info:
        with anyio.fail_after(20):
            async with agent.stream("go") as run:
                async for event in run:
                    events.append(event)
    assert info.value.limit == "run"
    assert any(isinstance(e, ToolStarted) for e in events)
    # The stopped call was answered, so the conversation can be continued.
    assert [m["role"] for m in run.messages] == ["user", "assistant", "tool"]


@pytest.mark.parametrize("field", ["first_chunk", "idle", "step", "tool", "run"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Timeouts(**{field: 0})
