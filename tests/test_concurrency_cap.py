"""`Agent(max_concurrent_tools=N)`: at most N calls of a run at once, the rest queued in order.

The tools count themselves: how many run at this moment, the most ever, and how many
had finished when each started. No wall-clock figure is asserted (the machine is shared):
the cap's prediction is checked as an order of events.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest

from agentstream import (
    Agent,
    RunState,
    SetupError,
    ToolFinished,
    ToolQueued,
    ToolStarted,
    tool,
)
from agentstream.loop._cancel import Slots
from agentstream.testing import Reply, ScriptedModel, ToolCall

from ._helpers import of

pytestmark = pytest.mark.anyio

WIRES = [pytest.param("chat", id="chat"), pytest.param("responses", id="responses")]


class Gauge:
    """Tools that measure their own concurrency (a lock: sync ones run in threads)."""

    def __init__(self, pause: float = 0.02) -> None:
        self.lock = threading.Lock()
        self.running = self.peak = self.finished = 0
        self.done_before: dict[int, int] = {}  # call number -> calls finished when it began

        def enter(n: int) -> None:
            with self.lock:
                self.done_before[n] = self.finished
                self.running += 1
                self.peak = max(self.peak, self.running)

        def leave() -> None:
            with self.lock:
                self.running -= 1
                self.finished += 1

        @tool
        async def slow(n: int) -> str:
            """Work a while (async)."""
            enter(n)
            try:
                await anyio.sleep(pause)
            finally:
                leave()
            return f"done {n}"

        @tool
        def slow_sync(n: int) -> str:
            """Work a while (in a thread)."""
            enter(n)
            try:
                time.sleep(pause)
            finally:
                leave()
            return f"done {n}"

        @tool(early=True)
        async def slow_early(n: int) -> str:
            """Work a while (may start while the response streams)."""
            enter(n)
            try:
                await anyio.sleep(pause)
            finally:
                leave()
            return f"done {n}"

        self.tools = [slow, slow_sync, slow_early]


def five_calls(name: str, count: int = 5) -> ScriptedModel:
    calls = [ToolCall(name, {"n": n}, id=f"c{n}") for n in range(count)]
    return ScriptedModel([Reply(tool_calls=calls), Reply("All done.")])


async def run_capped(model: ScriptedModel, gauge: Gauge, **options: Any) -> tuple[list[Any], Any]:
    agent = Agent(client=model.async_client(), model="m", tools=gauge.tools, **options)
    events: list[Any] = []
    with anyio.fail_after(30):
        async with agent.stream("go") as run:
            async for event in run:
                events.append(event)
    return events, run.result


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        pytest.param("slow", "chat", id="async-chat"),
        pytest.param("slow", "responses", id="async-responses"),
        pytest.param("slow_sync", "chat", id="sync-chat"),
    ],
)
async def test_a_cap_of_two_runs_five_calls_two_at_a_time_in_order(name: str, wire: str) -> None:
    gauge = Gauge()
    model = five_calls(name)
    events, result = await run_capped(model, gauge, max_concurrent_tools=2, api=wire)
    ids = [f"c{n}" for n in range(5)]
    assert gauge.peak == 2
    # The first two start at once; the other three wait, and leave the queue in order.
    assert [event.id for event in of(events, ToolQueued)] == ids[2:]
    started = [event.id for event in of(events, ToolStarted)]
    assert sorted(started[:2]) == ids[:2]  # started together: the loop picks their order
    assert started[2:] == ids[2:]
    for queued in of(events, ToolQueued):
        started = next(e for e in of(events, ToolStarted) if e.id == queued.id)
        assert events.index(queued) < events.index(started)
    # What the cap predicts: call k (k >= 2) begins only once k - 1 calls have ended,
    # so five calls take three rounds, not one.
    assert [gauge.done_before[n] for n in (0, 1)] == [0, 0]
    assert all(gauge.done_before[n] >= n - 1 for n in range(2, 5))
    assert sorted(e.id for e in of(events, ToolFinished)) == ids
    sent = model.requests[1].messages
    told = [(m["tool_call_id"], m["content"]) for m in sent if m["role"] == "tool"]
    assert told == [(f"c{n}", f"done {n}") for n in range(5)]
    assert result.output == "All done."


async def test_without_a_cap_the_five_calls_run_together() -> None:
    gauge = Gauge(pause=0.05)
    events, _ = await run_capped(five_calls("slow"), gauge)
    assert gauge.peak == 5  # the gauge sees concurrency: the capped cases are not vacuous
    assert not of(events, ToolQueued)


async def test_early_starts_take_their_slots_in_call_order() -> None:
    gauge = Gauge()
    model = five_calls("slow_early", count=3)
    events, _ = await run_capped(model, gauge, max_concurrent_tools=1, early_tools=True)
    assert gauge.peak == 1
    assert [event.id for event in of(events, ToolStarted)] == ["c0", "c1", "c2"]  # one by one
    assert [event.id for event in of(events, ToolQueued)] == ["c1", "c2"]
    assert [gauge.done_before[n] for n in range(3)] == [0, 1, 2]


async def test_the_cap_holds_across_the_steps_of_a_run() -> None:
    gauge = Gauge()
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("slow", {"n": n}, id=f"a{n}") for n in range(3)]),
            Reply(tool_calls=[ToolCall("slow_sync", {"n": n}, id=f"b{n}") for n in range(3, 6)]),
            Reply("ok"),
        ]
    )
    events, result = await run_capped(model, gauge, max_concurrent_tools=2)
    assert gauge.peak == 2
    assert [event.id for event in of(events, ToolQueued)] == ["a2", "b5"]
    assert result.output == "ok"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param("2", id="string"),
        pytest.param(True, id="bool"),
        pytest.param(1.5, id="float"),
    ],
)
def test_max_concurrent_tools_must_be_a_positive_integer(value: Any) -> None:
    with pytest.raises(SetupError, match="max_concurrent_tools must be an integer >= 1"):
        Agent(client=lambda: None, model="m", max_concurrent_tools=value)  # type: ignore[arg-type,return-value]


def test_max_concurrent_tools_is_kept_by_replace_and_named_for_other_libraries() -> None:
    agent = Agent(client=lambda: None, model="m", max_concurrent_tools=3)  # type: ignore[arg-type,return-value]
    assert agent.replace(model="n").max_concurrent_tools == 3
    assert agent.replace(max_concurrent_tools=None).max_concurrent_tools is None
    with pytest.raises(SetupError, match="use max_concurrent_tools"):
        Agent(client=lambda: None, model="m", max_function_tool_concurrency=2)  # type: ignore[arg-type,return-value]


async def test_slots_hand_a_freed_slot_to_the_first_waiting_and_skip_those_that_left() -> None:
    slots = Slots(1)
    assert slots.ask("a")
    assert not slots.ask("b")
    assert not slots.ask("c")
    assert not slots.ask("d")
    slots.give_back("c")  # left the line (cancelled while waiting)
    slots.give_back("a")  # `b` is woken; `d` waits until `b`'s task has resumed
    with anyio.fail_after(5):
        await slots.take("b")
    slots.give_back("b")
    with anyio.fail_after(5):
        await slots.take("d")
    slots.give_back("d")
    assert slots.ask("e")  # all free again


async def test_a_woken_call_cancelled_before_it_resumed_passes_its_slot_on() -> None:
    slots = Slots(1)
    assert slots.ask("a")
    assert not slots.ask("b")
    assert not slots.ask("c")
    slots.give_back("a")  # `b` is woken...
    slots.give_back("b")  # ...and cancelled before its task resumed: `c` goes next
    with anyio.fail_after(5):
        await slots.take("c")


async def test_a_run_caps_its_calls_when_the_agent_has_no_cap() -> None:
    gauge = Gauge()
    model = five_calls("slow")
    agent = Agent(client=model.async_client(), model="m", tools=gauge.tools)
    with anyio.fail_after(30):
        async with agent.stream("go", max_concurrent_tools=2) as run:
            events = [event async for event in run]
    assert gauge.peak == 2
    assert [event.id for event in of(events, ToolQueued)] == ["c2", "c3", "c4"]
    assert all(gauge.done_before[n] >= n - 1 for n in range(2, 5))
    assert run.result.output == "All done."
    # The agent itself keeps no cap: its next run runs the five calls together.
    again = Gauge(pause=0.05)
    model = five_calls("slow")
    await agent.replace(client=model.async_client(), tools=again.tools).run("go")
    assert again.peak == 5


async def test_a_run_lifts_the_agents_cap_for_itself() -> None:
    gauge = Gauge(pause=0.05)
    model = five_calls("slow")
    agent = Agent(client=model.async_client(), model="m", tools=gauge.tools, max_concurrent_tools=2)
    with anyio.fail_after(30):
        result = await agent.run("go", max_concurrent_tools=5)
    assert gauge.peak == 5  # all five at once, where the agent would run two
    assert result.output == "All done."
    # and tightens it the other way: one at a time, in call order
    narrow = Gauge()
    model = five_calls("slow")
    agent = agent.replace(client=model.async_client(), tools=narrow.tools)
    async with agent.stream("go", max_concurrent_tools=1) as run:
        events = [event async for event in run]
    assert narrow.peak == 1
    assert [event.id for event in of(events, ToolQueued)] == ["c1", "c2", "c3", "c4"]
    assert [narrow.done_before[n] for n in range(5)] == [0, 1, 2, 3, 4]


async def test_a_resumed_run_takes_its_own_cap() -> None:
    running, peak = 0, 0

    @tool(needs_approval=True)
    async def guarded(n: int) -> str:
        """Work a while, once a person agrees."""
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.02)
        running -= 1
        return f"done {n}"

    calls = [ToolCall("guarded", {"n": n}, id=f"c{n}") for n in range(4)]
    model = ScriptedModel([Reply(tool_calls=calls), Reply("All done.")])
    agent = Agent(client=model.async_client(), model="m", tools=[guarded])
    paused = await agent.run("go")
    assert paused.stop_reason == "approval_required"
    decisions = {f"c{n}": True for n in range(4)}
    with anyio.fail_after(30):
        async with agent.resume_stream(
            paused.state, approvals=decisions, max_concurrent_tools=2
        ) as run:
            events = [event async for event in run]
    assert peak == 2
    assert [event.id for event in of(events, ToolQueued)] == ["c2", "c3"]
    assert run.result.output == "All done."


@pytest.mark.parametrize(
    "value",
    [pytest.param(0, id="zero"), pytest.param("2", id="string"), pytest.param(True, id="bool")],
)
def test_a_runs_cap_is_checked_like_the_agents(value: Any) -> None:
    agent = Agent(client=lambda: None, model="m")  # type: ignore[arg-type,return-value]
    with pytest.raises(SetupError, match="max_concurrent_tools must be an integer >= 1"):
        agent.stream("go", max_concurrent_tools=value)
    with pytest.raises(SetupError, match="max_concurrent_tools must be an integer >= 1"):
        agent.resume_stream(RunState.start("r", []), max_concurrent_tools=value)
