"""Agents as tools (`Agent.as_tool`): an agent's run inside another's tool call, with its
events streamed in the outer run, its usage rolled up, its approvals pausing the outer
run, and the outer run's cancellation reaching it. Two scripted models over real SSE."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from pydantic import BaseModel

from agentstream import (
    Agent,
    Approval,
    ApprovalRequested,
    RunFinished,
    RunStarted,
    RunState,
    Session,
    StateError,
    StepFinished,
    SubRunEvent,
    ToolCallDenied,
    ToolFinished,
    ToolPaused,
    ToolStarted,
    Usage,
    event_to_dict,
    tool,
)
from agentstream.stores import SQLiteStore
from agentstream.testing import Reply, ScriptedModel, ToolCall

from ._helpers import NO_RETRIES, of

pytestmark = pytest.mark.anyio

Wire = Literal["chat", "responses"]


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


@tool
def lookup(q: str) -> str:
    """Look something up."""
    return f"{q} is 42"


def inner_script() -> list[Reply]:
    return [
        Reply("Let me look.", tool_calls=[ToolCall("lookup", {"q": "X"}, id="i1")],
              usage=usage(100, 20)),
        Reply("X is 42.", usage=usage(200, 10)),
    ]  # fmt: skip


def outer_script(tool_name: str = "researcher") -> list[Reply]:
    return [
        Reply(tool_calls=[ToolCall(tool_name, {"input": "find X"}, id="o1")], usage=usage(10, 5)),
        Reply("The answer is 42.", usage=usage(30, 7)),
    ]


async def collect(agent: Agent[Any], prompt: str = "go", **options: Any) -> tuple[list[Any], Any]:
    events: list[Any] = []
    with anyio.fail_after(20):
        async with agent.stream(prompt, **options) as run:
            async for event in run:
                events.append(event)
    return events, run.result


async def collect_resumed(
    agent: Agent[Any], state: RunState, approvals: dict[str, Any]
) -> tuple[list[Any], Any]:
    events: list[Any] = []
    with anyio.fail_after(20):
        async with agent.resume_stream(state, approvals=approvals) as run:
            async for event in run:
                events.append(event)
    return events, run.result


def kinds(events: list[Any]) -> list[str]:
    return [event.type for event in events]


async def test_the_inner_events_stream_inside_the_call_in_order() -> None:
    inner_model, outer_model = ScriptedModel(inner_script()), ScriptedModel(outer_script())
    inner = Agent(client=inner_model.async_client(), model="inner", tools=[lookup])
    outer = Agent(
        client=outer_model.async_client(), model="outer", tools=[inner.as_tool("researcher")]
    )
    events, result = await collect(outer)

    # The same inner agent run alone reports the same events, in the same order.
    alone = Agent(
        client=ScriptedModel(inner_script()).async_client(), model="inner", tools=[lookup]
    )
    expected, _ = await collect(alone, "find X")
    nested = of(events, SubRunEvent)
    assert kinds([e.event for e in nested]) == kinds(expected)
    assert [e.event.text for e in nested if e.event.type == "text_delta"] == [
        e.text for e in expected if e.type == "text_delta"
    ]
    assert {(e.step, e.index, e.id, e.name, e.path, e.call_ids) for e in nested} == {
        (1, 0, "o1", "researcher", ("researcher",), ("o1",))
    }
    # All of them between the call's start and its end, as they happened.
    positions = [i for i, e in enumerate(events) if isinstance(e, SubRunEvent)]
    started = next(i for i, e in enumerate(events) if isinstance(e, ToolStarted))
    finished = next(i for i, e in enumerate(events) if isinstance(e, ToolFinished))
    assert started < positions[0]
    assert positions[-1] < finished
    # The inner model got the outer model's input; the outer model got the inner answer.
    assert inner_model.requests[0].body["messages"][-1] == {"role": "user", "content": "find X"}
    assert events[finished].output == "X is 42."
    sent = outer_model.requests[1].body["messages"][-1]
    assert sent == {"role": "tool", "tool_call_id": "o1", "content": "X is 42."}
    assert result.output == "The answer is 42."
    # As plain data, the inner event keeps its own type.
    data = event_to_dict(nested[0])
    assert data["type"] == "sub_run_event"
    assert data["event"]["type"] == "run_started"


async def test_the_inner_usage_joins_the_outer_usage() -> None:
    inner = Agent(client=ScriptedModel(inner_script()).async_client(), model="i", tools=[lookup])
    outer = Agent(
        client=ScriptedModel(outer_script()).async_client(), model="o",
        tools=[inner.as_tool("researcher")],
    )  # fmt: skip
    events, result = await collect(outer)
    assert result.usage == Usage(10 + 100 + 200 + 30, 5 + 20 + 10 + 7, 15 + 120 + 210 + 37)
    inner_result = next(
        e.event.result for e in of(events, SubRunEvent) if isinstance(e.event, RunFinished)
    )
    assert inner_result.usage == Usage(300, 30, 330)
    assert [info.usage for info in result.steps] == [Usage(10, 5, 15), Usage(30, 7, 37)]


async def test_an_agent_two_levels_down_is_one_wrapper_with_a_longer_path() -> None:
    leaf = Agent(client=ScriptedModel(inner_script()).async_client(), model="l", tools=[lookup])
    middle_script = [
        Reply(tool_calls=[ToolCall("leaf", {"input": "find X"}, id="m1")], usage=usage(1, 1)),
        Reply("middle: X is 42.", usage=usage(2, 2)),
    ]
    middle = Agent(
        client=ScriptedModel(middle_script).async_client(), model="m", tools=[leaf.as_tool("leaf")]
    )
    outer = Agent(
        client=ScriptedModel(outer_script("middle")).async_client(), model="o",
        tools=[middle.as_tool("middle")],
    )  # fmt: skip
    events, result = await collect(outer)
    nested = of(events, SubRunEvent)
    deep = [e for e in nested if len(e.path) == 2]
    assert deep
    assert all(not isinstance(e.event, SubRunEvent) for e in nested)
    assert {(e.path, e.call_ids) for e in deep} == {(("middle", "leaf"), ("o1", "m1"))}
    assert result.usage.total_tokens == 15 + 37 + 2 + 4 + 120 + 210


class Answer(BaseModel):
    value: int
    unit: str


async def test_a_typed_inner_output_goes_back_as_json() -> None:
    inner_model = ScriptedModel([Reply('{"value": 42, "unit": "m"}')])
    inner = Agent(client=inner_model.async_client(), model="i", output_type=Answer)
    outer_model = ScriptedModel(outer_script("measure"))
    outer = Agent(client=outer_model.async_client(), model="o", tools=[inner.as_tool("measure")])
    events, _ = await collect(outer)
    finished = of(events, ToolFinished)[0]
    assert finished.value == Answer(value=42, unit="m")
    content = outer_model.requests[1].body["messages"][-1]["content"]
    assert json.loads(content) == {"value": 42, "unit": "m"}


class Bank:
    def __init__(self) -> None:
        self.sent: list[int] = []

        @tool(needs_approval=True)
        def transfer(amount: int) -> str:
            """Send money."""
            self.sent.append(amount)
            return f"sent {amount}"

        self.tool = transfer


def banker(bank: Bank, model: ScriptedModel) -> Agent[Any]:
    return Agent(client=model.async_client(), model="banker", tools=[bank.tool])


def bank_script() -> list[Reply]:
    return [
        Reply(tool_calls=[ToolCall("transfer", {"amount": 30}, id="i1")], usage=usage(100, 20)),
        Reply("Sent 30.", usage=usage(200, 10)),
    ]


def boss_script() -> list[Reply]:
    return [
        Reply(tool_calls=[ToolCall("bank", {"input": "pay 30"}, id="o1")], usage=usage(10, 5)),
        Reply("Paid.", usage=usage(30, 7)),
    ]


@pytest.mark.parametrize("approved", [True, False], ids=["approved", "denied"])
async def test_an_inner_approval_pauses_the_outer_run_and_resume_answers_it(
    approved: bool,
) -> None:
    bank, bank_model, boss_model = (
        Bank(),
        ScriptedModel(bank_script()),
        ScriptedModel(boss_script()),
    )
    boss = Agent(
        client=boss_model.async_client(), model="boss",
        tools=[banker(bank, bank_model).as_tool("bank")],
    )  # fmt: skip
    events, paused = await collect(boss)
    assert paused.stop_reason == "approval_required"
    [request] = paused.approvals
    assert (request.id, request.tool, request.arguments, request.path) == (
        "o1/i1", "transfer", {"amount": 30}, ("bank",)
    )  # fmt: skip
    inner_asked = [
        e.event for e in of(events, SubRunEvent) if isinstance(e.event, ApprovalRequested)
    ]
    assert [(e.id, e.name) for e in inner_asked] == [("i1", "transfer")]
    assert [(e.id, [r.id for r in e.approvals]) for e in of(events, ToolPaused)] == [
        ("o1", ["o1/i1"])
    ]
    assert of(events, ToolFinished) == []
    assert bank.sent == []
    assert len(boss_model.requests) == 1
    assert len(bank_model.requests) == 1

    # Resumed from JSON alone, as another process would.
    saved = paused.state.to_json()
    assert RunState.from_json(saved).to_json() == saved
    with anyio.fail_after(20):
        async with boss.resume_stream(saved, approvals={request.id: approved}) as run:
            resumed = [event async for event in run]
    result = run.result
    assert result.stop_reason == "answer"
    assert result.output == "Paid."
    assert bank.sent == ([30] if approved else [])
    inner = [e.event for e in of(resumed, SubRunEvent)]
    if not approved:
        assert [e.id for e in inner if isinstance(e, ToolCallDenied)] == ["i1"]
    inner_told = bank_model.requests[1].body["messages"][-1]
    assert inner_told["tool_call_id"] == "i1"
    assert inner_told["content"] == ("sent 30" if approved else
                                     "denied: the user did not approve this call")  # fmt: skip
    assert of(resumed, ToolFinished)[0].output == "Sent 30."
    assert boss_model.requests[1].body["messages"][-1]["content"] == "Sent 30."
    # Every step's usage counted once across the pause, inner steps included.
    assert result.usage.total_tokens == 15 + 120 + 210 + 37
    assert result.state is not None
    assert result.state.pending is None
    assert result.state.calls_run == 1  # the agent call counts once, across the pause


async def test_a_resume_without_the_inner_decision_pauses_again() -> None:
    bank, bank_model = Bank(), ScriptedModel(bank_script())
    boss = Agent(
        client=ScriptedModel(boss_script()).async_client(), model="boss",
        tools=[banker(bank, bank_model).as_tool("bank")],
    )  # fmt: skip
    _, paused = await collect(boss)
    again = await boss.resume(paused.state, approvals={"o1": True})  # the outer id decides nothing
    assert again.stop_reason == "approval_required"
    assert [r.id for r in again.approvals] == ["o1/i1"]
    assert bank.sent == []
    assert len(bank_model.requests) == 1


async def test_a_tampered_inner_run_in_the_saved_state_is_refused() -> None:
    bank = Bank()
    boss = Agent(
        client=ScriptedModel(boss_script()).async_client(), model="boss",
        tools=[banker(bank, ScriptedModel(bank_script())).as_tool("bank")],
    )  # fmt: skip
    _, paused = await collect(boss)
    data = paused.state.to_dict()
    data["pending"]["calls"][0]["subrun"]["requests"][0]["path"] = "bank"
    with pytest.raises(StateError, match="malformed inner run"):
        RunState.from_dict(data)


async def test_cancelling_the_outer_run_cancels_the_inner_tool() -> None:
    seen: list[str] = []

    @tool
    async def slow(q: str) -> str:
        """Takes forever."""
        seen.append("started")
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise
        return "never"

    inner_model = ScriptedModel([Reply(tool_calls=[ToolCall("slow", {"q": "X"}, id="i1")])])
    inner = Agent(client=inner_model.async_client(), model="i", tools=[slow])
    outer = Agent(
        client=ScriptedModel(outer_script()).async_client(), model="o",
        tools=[inner.as_tool("researcher")],
    )  # fmt: skip
    events: list[Any] = []
    with anyio.fail_after(20):
        with anyio.CancelScope() as scope:
            async with outer.stream("go") as run:
                async for event in run:
                    events.append(event)
                    if isinstance(event, SubRunEvent) and isinstance(event.event, ToolStarted):
                        scope.cancel()  # the person watching stops the whole run
    assert scope.cancelled_caught
    assert seen == ["started", "cancelled"]
    assert of(events, ToolFinished) == []
    # The outer conversation stays consistent: the agent call is answered.
    assert run.messages[-1]["role"] == "tool"
    assert run.messages[-1]["tool_call_id"] == "o1"


async def test_leaving_the_outer_block_cancels_the_inner_tool() -> None:
    seen: list[str] = []

    @tool
    async def slow(q: str) -> str:
        """Takes forever."""
        try:
            await anyio.sleep_forever()
        finally:
            seen.append("ended")
        return "never"

    inner_model = ScriptedModel([Reply(tool_calls=[ToolCall("slow", {"q": "X"}, id="i1")])])
    inner = Agent(client=inner_model.async_client(), model="i", tools=[slow])
    outer = Agent(
        client=ScriptedModel(outer_script()).async_client(), model="o",
        tools=[inner.as_tool("researcher")],
    )  # fmt: skip
    with anyio.fail_after(20):
        async with outer.stream("go") as run:
            async for event in run:
                if isinstance(event, SubRunEvent) and isinstance(event.event, ToolStarted):
                    break
    assert seen == ["ended"]


async def test_an_inner_run_that_fails_is_the_calls_failure_told_to_the_outer_model() -> None:
    # No reply: HTTP 500, and no retry.
    inner = Agent(client=ScriptedModel([]).async_client(), model="i", retries=NO_RETRIES)
    outer_model = ScriptedModel(outer_script())
    outer = Agent(client=outer_model.async_client(), model="o", tools=[inner.as_tool("researcher")])
    events, result = await collect(outer)
    finished = of(events, ToolFinished)[0]
    assert not finished.ok
    assert "ModelError" in finished.output
    assert [type(e.event).__name__ for e in of(events, SubRunEvent)][-1] == "RunFailed"
    assert result.output == "The answer is 42."
    assert of(events, RunStarted)[0].tools == ("researcher",)
    assert sum(1 for e in events if isinstance(e, StepFinished)) == 2


async def test_a_paused_inner_run_is_saved_in_the_session_and_resumed_from_it(
    tmp_path: Path,
) -> None:
    bank, bank_model, boss_model = (
        Bank(),
        ScriptedModel(bank_script()),
        ScriptedModel(boss_script()),
    )
    boss = Agent(
        client=boss_model.async_client(), model="boss",
        tools=[banker(bank, bank_model).as_tool("bank")],
    )  # fmt: skip
    store = SQLiteStore(tmp_path / "runs.db")
    with anyio.fail_after(20):
        paused = await boss.run("pay 30", session=Session(store, "job"))
        assert [r.id for r in paused.approvals] == ["o1/i1"]
        done = await boss.resume(session=Session(store, "job"), approvals={"o1/i1": True})
    assert done.output == "Paid."
    assert bank.sent == [30]
    assert len(bank_model.requests) == 2


async def test_the_web_stream_outlines_inner_events_on_the_agent_call() -> None:
    from agentstream.web import UIStreamEncoder

    inner = Agent(client=ScriptedModel(inner_script()).async_client(), model="i", tools=[lookup])
    outer = Agent(
        client=ScriptedModel(outer_script()).async_client(), model="o",
        tools=[inner.as_tool("researcher")],
    )  # fmt: skip
    events, _ = await collect(outer)
    encoder = UIStreamEncoder("msg")
    parts = [part for event in events for part in encoder.feed(event)]
    nested = [p["data"] for p in parts if p.get("data", {}).get("kind") == "sub_run"]
    assert len(nested) == len(of(events, SubRunEvent))
    assert {(d["toolCallId"], tuple(d["path"])) for d in nested} == {("o1", ("researcher",))}
    text = "".join(d["event"].get("text", "") for d in nested if d["event"]["type"] == "text_delta")
    assert text == "Let me look.X is 42."
    assert [d["event"] for d in nested if d["event"]["type"] == "tool_started"] == [
        {"type": "tool_started", "name": "lookup"}
    ]
    # The outer call's own card still gets its input and its output.
    outputs = [p for p in parts if p["type"] == "tool-output-available"]
    assert [(p["toolCallId"], p["output"]) for p in outputs] == [("o1", "X is 42.")]


@pytest.mark.parametrize(
    ("outer_api", "inner_api"),
    [("responses", "chat"), ("chat", "responses"), ("responses", "responses")],
)
async def test_either_wire_on_either_side(outer_api: Wire, inner_api: Wire) -> None:
    inner_model, outer_model = ScriptedModel(inner_script()), ScriptedModel(outer_script())
    inner = Agent(client=inner_model.async_client(), model="i", tools=[lookup], api=inner_api)
    outer = Agent(
        client=outer_model.async_client(), model="o", api=outer_api,
        tools=[inner.as_tool("researcher")],
    )  # fmt: skip
    events, result = await collect(outer)
    assert result.output == "The answer is 42."
    assert of(events, ToolFinished)[0].output == "X is 42."
    assert {r.api for r in inner_model.requests} == {inner_api}
    assert {r.api for r in outer_model.requests} == {outer_api}
    assert result.usage == Usage(340, 42, 382)


async def test_two_paused_agent_calls_are_resumed_one_decision_at_a_time() -> None:
    bank = Bank()

    def bank_policy(request: Any) -> Reply:
        messages = request.body["messages"]
        if messages[-1]["role"] == "tool":
            return Reply(f"done: {messages[-1]['content']}")
        amount = int(messages[-1]["content"].split()[-1])
        return Reply(tool_calls=[ToolCall("transfer", {"amount": amount}, id="i1")])

    boss_model = ScriptedModel([
        Reply(tool_calls=[
            ToolCall("bank", {"input": "pay 10"}, id="o1"),
            ToolCall("bank", {"input": "pay 20"}, id="o2"),
        ]),
        Reply("Both paid."),
    ])  # fmt: skip
    boss = Agent(
        client=boss_model.async_client(), model="boss",
        tools=[banker(bank, ScriptedModel(bank_policy)).as_tool("bank")],
    )  # fmt: skip
    with anyio.fail_after(20):
        paused = await boss.run("pay both")
        assert sorted(r.id for r in paused.approvals) == ["o1/i1", "o2/i1"]
        assert paused.state is not None
        half = await boss.resume(paused.state.to_json(), approvals={"o2/i1": True})
        assert half.stop_reason == "approval_required"
        assert [r.id for r in half.approvals] == ["o1/i1"]
        assert bank.sent == [20]
        assert len(boss_model.requests) == 1
        assert half.state is not None
        done = await boss.resume(half.state.to_json(), approvals={"o1/i1": Approval.deny()})
    assert done.output == "Both paid."
    assert bank.sent == [20]
    told = {m["tool_call_id"]: m["content"] for m in done.messages if m["role"] == "tool"}
    assert told == {
        "o1": "done: denied: the user did not approve this call",
        "o2": "done: sent 20",
    }


async def test_a_tampered_inner_state_is_refused_and_never_runs_the_gated_call() -> None:
    bank = Bank()
    boss = Agent(
        client=ScriptedModel(boss_script()).async_client(), model="boss",
        tools=[banker(bank, ScriptedModel(bank_script())).as_tool("bank")],
    )  # fmt: skip
    _, paused = await collect(boss)
    data = paused.state.to_dict()
    inner = data["pending"]["calls"][0]["subrun"]["state"]
    inner["pending"]["calls"][0]["status"] = "ready"  # as if approved, with no decision
    # Well formed, so it reads; the inner run refuses it when taken up, before any tool.
    events, _ = await collect_resumed(boss, RunState.from_dict(data), {"o1/other": True})
    assert bank.sent == []
    assert "StateError" in of(events, ToolFinished)[0].output
    inner["messages"].append({"role": "tool", "tool_call_id": "nobody", "content": "x"})
    with pytest.raises(StateError, match="tool result for a call that does not exist"):
        RunState.from_dict(data)
