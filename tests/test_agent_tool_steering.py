"""Steering an agent tool's inner run from the outer one: the outer approver decides the
inner calls (or, with none, the outer run pauses), and `cancel_call` on the agent call
cancels the inner run. Scripted models over real SSE, on asyncio and trio."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from agentstream import (
    Agent,
    Approval,
    ApprovalRequest,
    StepFinished,
    SubRunEvent,
    ToolCallApproved,
    ToolCallDenied,
    ToolCancelled,
    ToolFinished,
    ToolPaused,
    ToolStarted,
    tool,
)
from agentstream.testing import Reply, ScriptedModel, ToolCall

from ._helpers import of
from .test_agent_tool import Bank, bank_script, boss_script, collect, outer_script, usage

pytestmark = pytest.mark.anyio


def boss_with_bank(bank: Bank, bank_model: ScriptedModel, **options: Any) -> Agent[Any]:
    inner = Agent(client=bank_model.async_client(), model="banker", tools=[bank.tool])
    return Agent(
        client=ScriptedModel(boss_script()).async_client(), model="boss",
        tools=[inner.as_tool("bank")], **options,
    )  # fmt: skip


class Asked:
    """An approver (sync or async) that records what it was asked."""

    def __init__(self, answer: bool | Approval, *, asynchronous: bool = False) -> None:
        self.requests: list[ApprovalRequest] = []
        self.answer = answer
        self.asynchronous = asynchronous

    def __call__(self, request: ApprovalRequest) -> Any:
        self.requests.append(request)
        if not self.asynchronous:
            return self.answer

        async def later() -> bool | Approval:
            await anyio.sleep(0)
            return self.answer

        return later()


@pytest.mark.parametrize(
    ("answer", "where", "asynchronous"),
    [
        pytest.param(True, "run", False, id="approved-by-the-runs-approver"),
        pytest.param(Approval.deny("not today"), "run", True, id="denied-async"),
        pytest.param(True, "agent", True, id="approved-by-the-agents-approver"),
    ],
)
async def test_the_outer_approver_decides_an_inner_call_and_the_run_never_pauses(
    answer: bool | Approval, where: str, asynchronous: bool
) -> None:
    bank, bank_model = Bank(), ScriptedModel(bank_script())
    asked = Asked(answer, asynchronous=asynchronous)
    if where == "agent":
        boss = boss_with_bank(bank, bank_model, approver=asked)
        events, result = await collect(boss)
    else:
        boss = boss_with_bank(bank, bank_model)
        events, result = await collect(boss, approver=asked)
    # Asked once, about the inner call, named as the outer run names it.
    [request] = asked.requests
    assert (request.id, request.tool, request.arguments, request.path) == (
        "o1/i1", "transfer", {"amount": 30}, ("bank",)
    )  # fmt: skip
    approved = answer is True
    assert result.stop_reason == "answer"
    assert result.output == "Paid."
    assert of(events, ToolPaused) == []
    assert bank.sent == ([30] if approved else [])
    inner = [e.event for e in of(events, SubRunEvent)]
    decided = of(inner, ToolCallApproved) if approved else of(inner, ToolCallDenied)
    assert [e.id for e in decided] == ["i1"]
    told = bank_model.requests[1].body["messages"][-1]["content"]
    assert told == (
        "sent 30" if approved else "denied: the user did not approve this call: not today"
    )


async def test_without_an_approver_the_inner_call_pauses_the_outer_run() -> None:
    bank, bank_model = Bank(), ScriptedModel(bank_script())
    events, paused = await collect(boss_with_bank(bank, bank_model))
    assert paused.stop_reason == "approval_required"
    assert [r.id for r in paused.approvals] == ["o1/i1"]
    assert [e.id for e in of(events, ToolPaused)] == ["o1"]
    assert bank.sent == []
    # Resumed with an approver, the inner call still undecided goes to it.
    asked = Asked(True)
    done = await boss_with_bank(bank, bank_model).resume(paused.state, approver=asked)
    assert [r.id for r in asked.requests] == ["o1/i1"]
    assert (done.stop_reason, done.output, bank.sent) == ("answer", "Paid.", [30])


async def test_the_inner_agents_own_approver_comes_first() -> None:
    bank, bank_model = Bank(), ScriptedModel(bank_script())
    own = Asked(Approval.deny("the bank says no"))
    inner = Agent(client=bank_model.async_client(), model="b", tools=[bank.tool], approver=own)
    boss = Agent(
        client=ScriptedModel(boss_script()).async_client(), model="boss",
        tools=[inner.as_tool("bank")],
    )  # fmt: skip
    outer = Asked(True)
    _, result = await collect(boss, approver=outer)
    assert [r.id for r in own.requests] == ["i1"]  # the inner agent's, in its own names
    assert outer.requests == []
    assert bank.sent == []
    assert result.output == "Paid."


async def test_two_levels_down_the_outer_approver_sees_the_whole_path() -> None:
    bank, bank_model = Bank(), ScriptedModel(bank_script())
    banker = Agent(client=bank_model.async_client(), model="b", tools=[bank.tool])
    middle_model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("bank", {"input": "pay 30"}, id="m1")]),
            Reply("The bank paid."),
        ]
    )
    middle = Agent(client=middle_model.async_client(), model="m", tools=[banker.as_tool("bank")])
    boss_model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("office", {"input": "pay"}, id="o1")]), Reply("Paid.")]
    )
    boss = Agent(client=boss_model.async_client(), model="boss", tools=[middle.as_tool("office")])
    asked = Asked(True)
    _, result = await collect(boss, approver=asked)
    [request] = asked.requests
    assert (request.id, request.path) == ("o1/m1/i1", ("office", "bank"))
    assert (result.output, bank.sent) == ("Paid.", [30])


# --- cancel_call on an agent tool's call


class Slow:
    """An inner tool that runs until cancelled, and says whether it was."""

    def __init__(self) -> None:
        self.seen: list[str] = []

        @tool
        async def dig(q: str) -> str:
            """Dig for a long time."""
            self.seen.append("started")
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                self.seen.append("cancelled")
                raise
            return "never"

        self.tool = dig


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_cancel_call_on_the_agent_call_cancels_the_inner_run_and_the_outer_goes_on(
    api: str,
) -> None:
    slow = Slow()
    inner_model = ScriptedModel(
        [Reply("Digging.", tool_calls=[ToolCall("dig", {"q": "X"}, id="i1")], usage=usage(100, 20))]
    )
    inner = Agent(client=inner_model.async_client(), model="i", tools=[slow.tool], api=api)  # type: ignore[arg-type]
    outer_model = ScriptedModel(outer_script())
    outer = Agent(
        client=outer_model.async_client(), model="o", tools=[inner.as_tool("researcher")],
        api=api,  # type: ignore[arg-type]
    )  # fmt: skip
    events: list[Any] = []
    with anyio.fail_after(20):
        async with outer.stream("go") as run:
            async for event in run:
                events.append(event)
                if isinstance(event, SubRunEvent) and isinstance(event.event, ToolStarted):
                    run.cancel_call("o1", "found it elsewhere")
    result = run.result
    # The inner tool was cancelled (not left running), the inner run with it.
    assert slow.seen == ["started", "cancelled"]
    assert len(inner_model.requests) == 1
    [cancelled] = of(events, ToolCancelled)
    assert (cancelled.id, cancelled.reason) == ("o1", "found it elsewhere")
    [finished] = of(events, ToolFinished)
    assert finished.id == "o1"
    # The model is told, and the outer run goes on to its answer.
    told = outer_model.requests[1].messages[-1]
    assert (told["role"], told["tool_call_id"]) == ("tool", "o1")
    assert "Cancelled by the user" in told["content"]
    assert "found it elsewhere" in told["content"]
    assert result.stop_reason == "answer"
    assert result.output == "The answer is 42."
    # The inner step never finished, but what its response used still counts.
    inner_steps = [e for e in of(events, SubRunEvent) if isinstance(e.event, StepFinished)]
    assert inner_steps == []
    assert result.usage.total_tokens == 15 + 120 + 37


async def test_cancel_call_on_an_agent_call_waiting_for_a_slot_never_starts_it() -> None:
    slow = Slow()
    inner_model = ScriptedModel([Reply(tool_calls=[ToolCall("dig", {"q": "X"}, id="i1")])])
    inner = Agent(client=inner_model.async_client(), model="i", tools=[slow.tool])
    outer_model = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("researcher", {"input": "a"}, id="o1"),
                    ToolCall("researcher", {"input": "b"}, id="o2"),
                ]
            ),
            Reply("Done."),
        ]
    )
    outer = Agent(
        client=outer_model.async_client(), model="o", tools=[inner.as_tool("researcher")],
        max_concurrent_tools=1,
    )  # fmt: skip
    events: list[Any] = []
    with anyio.fail_after(20):
        async with outer.stream("go") as run:
            async for event in run:
                events.append(event)
                if isinstance(event, SubRunEvent) and isinstance(event.event, ToolStarted):
                    run.cancel_call("o2")  # queued behind o1: it never starts
                    run.cancel_call("o1")
    assert sorted(e.id for e in of(events, ToolCancelled)) == ["o1", "o2"]
    assert [e.id for e in of(events, ToolStarted)] == ["o1"]
    assert len(inner_model.requests) == 1  # o2's inner run never began
    assert slow.seen == ["started", "cancelled"]
    assert run.result.output == "Done."
