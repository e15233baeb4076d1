"""Calls that need a person's approval: asked, approved, denied, or the run pauses and is
resumed later (from JSON alone, as another process would)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from agentstream import (
    Agent,
    Approval,
    ApprovalRequest,
    ApprovalRequested,
    RunFinished,
    RunState,
    SetupError,
    StateError,
    ToolCallApproved,
    ToolCallDenied,
    ToolContext,
    ToolFinished,
    ToolStarted,
    tool,
)
from agentstream.testing import Reply, ScriptedModel, ToolCall

from ._helpers import of

pytestmark = pytest.mark.anyio


class Bank:
    """Tools whose calls are recorded: `transfer` needs approval, `balance` does not."""

    def __init__(self) -> None:
        self.ran: list[str] = []

        @tool(needs_approval=True)
        def transfer(to: str, amount: int) -> str:
            """Send money."""
            self.ran.append(f"transfer {amount} to {to}")
            return f"sent {amount} to {to}"

        @tool
        def balance() -> str:
            """Read the balance."""
            self.ran.append("balance")
            return "100"

        @tool(needs_approval=lambda args, ctx: args["amount"] > 50)
        def pay(amount: int) -> str:
            """Pay a bill; large ones need approval."""
            self.ran.append(f"pay {amount}")
            return "paid"

        self.tools = [transfer, balance, pay]


def script() -> list[Reply]:
    return [
        Reply(
            tool_calls=[
                ToolCall("balance", {}, id="c1"),
                ToolCall("transfer", {"to": "Bob", "amount": 30}, id="c2"),
            ]
        ),
        Reply("Done."),
    ]


async def run(agent: Agent, prompt: str = "pay Bob", **options: Any) -> tuple[list[Any], Any]:
    events: list[Any] = []
    with anyio.fail_after(20):
        async with agent.stream(prompt, **options) as stream:
            async for event in stream:
                events.append(event)
    return events, stream.result


@pytest.mark.parametrize("is_async", [False, True], ids=["sync-approver", "async-approver"])
async def test_an_approver_approves_and_the_call_runs(is_async: bool) -> None:
    bank = Bank()
    asked: list[ApprovalRequest] = []

    def approve(request: ApprovalRequest) -> bool:
        asked.append(request)
        return True

    async def approve_async(request: ApprovalRequest) -> bool:
        return approve(request)

    model = ScriptedModel(script())
    agent = Agent(
        client=model.async_client(), model="m", tools=bank.tools,
        approver=approve_async if is_async else approve,
    )  # fmt: skip
    events, result = await run(agent)
    assert result.stop_reason == "answer"
    assert sorted(bank.ran) == ["balance", "transfer 30 to Bob"]
    assert [(r.id, r.tool, r.arguments) for r in asked] == [
        ("c2", "transfer", {"to": "Bob", "amount": 30})
    ]
    requested = of(events, ApprovalRequested)
    assert [(e.id, e.name, e.arguments) for e in requested] == [
        ("c2", "transfer", {"to": "Bob", "amount": 30})
    ]
    assert [e.id for e in of(events, ToolCallApproved)] == ["c2"]
    kinds = [type(e) for e in events]
    assert kinds.index(ToolCallApproved) < kinds.index(ToolStarted)


async def test_a_denial_with_a_reason_reaches_the_model_and_the_call_never_runs() -> None:
    bank = Bank()

    async def deny(request: ApprovalRequest) -> Approval:
        return Approval.deny("over the daily limit")

    model = ScriptedModel(script())
    agent = Agent(client=model.async_client(), model="m", tools=bank.tools, approver=deny)
    events, result = await run(agent)
    assert bank.ran == ["balance"]
    denied = of(events, ToolCallDenied)
    assert [(e.id, e.reason) for e in denied] == [("c2", "over the daily limit")]
    told = model.requests[1].messages[-1]
    assert told == {
        "role": "tool",
        "tool_call_id": "c2",
        "content": "denied: the user did not approve this call: over the daily limit",
    }
    assert result.stop_reason == "answer"


async def test_an_approver_that_fails_denies() -> None:
    bank = Bank()

    def broken(request: ApprovalRequest) -> bool:
        raise RuntimeError("no terminal")

    model = ScriptedModel(script())
    agent = Agent(client=model.async_client(), model="m", tools=bank.tools, approver=broken)
    events, _ = await run(agent)
    assert bank.ran == ["balance"]
    (denied,) = of(events, ToolCallDenied)
    assert denied.reason == "the approver failed: RuntimeError"


async def test_without_an_approver_the_run_pauses_after_the_other_calls() -> None:
    bank = Bank()
    model = ScriptedModel(script())
    agent = Agent(client=model.async_client(), model="m", tools=bank.tools)
    events, result = await run(agent)
    assert bank.ran == ["balance"]  # the other call of the step still ran
    assert result.stop_reason == "approval_required"
    assert [(a.id, a.tool, a.arguments) for a in result.approvals] == [
        ("c2", "transfer", {"to": "Bob", "amount": 30})
    ]
    assert result.output == ""
    # The conversation holds only complete steps; the step in progress is in the state.
    assert [m["role"] for m in result.messages] == ["user"]
    assert result.state is not None
    assert result.state.pending is not None
    assert [(c.id, c.status) for c in result.state.pending.calls] == [
        ("c1", "finished"),
        ("c2", "awaiting_approval"),
    ]
    assert isinstance(events[-1], RunFinished)
    assert len(model.requests) == 1


@pytest.mark.parametrize(
    ("decision", "ran", "told"),
    [
        pytest.param(True, ["transfer 30 to Bob"], "sent 30 to Bob", id="approved"),
        pytest.param(
            Approval.deny("not today"),
            [],
            "denied: the user did not approve this call: not today",
            id="denied",
        ),
    ],
)
async def test_a_paused_run_resumes_elsewhere_from_its_json(
    decision: bool | Approval, ran: list[str], told: str
) -> None:
    bank = Bank()
    model = ScriptedModel(script())
    agent = Agent(client=model.async_client(), model="m", tools=bank.tools)
    _, paused = await run(agent)
    saved = paused.state.to_json()

    # Another process, days later: a new agent, a new client, only the JSON.
    later_bank = Bank()
    later_model = ScriptedModel([Reply("Done.")])
    later = Agent(client=later_model.async_client(), model="m", tools=later_bank.tools)
    events: list[Any] = []
    with anyio.fail_after(20):
        async with later.resume_stream(saved, approvals={"c2": decision}) as resumed:
            async for event in resumed:
                events.append(event)
    result = resumed.result
    assert later_bank.ran == ran
    assert result.stop_reason == "answer"
    assert result.output == "Done."
    assert result.run_id == paused.run_id
    sent = later_model.requests[0].messages
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in sent[2:]] == [("c1", "100"), ("c2", told)]
    assert [m["role"] for m in result.messages] == [
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
    ]
    assert not of(events, ApprovalRequested)  # asked once, in the first process
    finished = of(events, ToolFinished)
    assert [e.id for e in finished] == (["c2"] if ran else [])


async def test_an_undecided_call_keeps_the_run_paused() -> None:
    bank = Bank()
    model = ScriptedModel(script())
    agent = Agent(client=model.async_client(), model="m", tools=bank.tools)
    _, paused = await run(agent)
    again = await agent.resume(paused.state.to_json())
    assert again.stop_reason == "approval_required"
    assert [a.id for a in again.approvals] == ["c2"]
    assert bank.ran == ["balance"]


async def test_a_rule_of_the_arguments_decides_per_call() -> None:
    bank = Bank()
    model = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("pay", {"amount": 10}, id="small"),
                    ToolCall("pay", {"amount": 500}, id="large"),
                ]
            ),
            Reply("ok"),
        ]
    )
    agent = Agent(client=model.async_client(), model="m", tools=bank.tools)
    _, result = await run(agent)
    assert bank.ran == ["pay 10"]
    assert [a.id for a in result.approvals] == ["large"]


async def test_a_finished_run_and_a_bad_decision_are_refused() -> None:
    bank = Bank()
    model = ScriptedModel([Reply("hello")])
    agent = Agent(client=model.async_client(), model="m", tools=bank.tools)
    _, done = await run(agent)
    with pytest.raises(StateError, match="finished"):
        agent.resume_stream(done.state.to_json())
    with pytest.raises(SetupError, match="call ids"):
        agent.resume_stream(done.state, approvals={"c2": "yes"})  # type: ignore[dict-item]
    with pytest.raises(SetupError, match="one of the two"):
        agent.resume_stream()


async def test_context_of_a_rule_names_the_call() -> None:
    seen: list[tuple[str, str]] = []

    def rule(args: dict[str, Any], ctx: ToolContext) -> bool:
        seen.append((ctx.tool_call_id, ctx.tool_name))
        return False

    @tool(needs_approval=rule)
    def noop() -> str:
        """Nothing."""
        return "ok"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("noop", {}, id="n1")]), Reply("ok")])
    agent = Agent(client=model.async_client(), model="m", tools=[noop])
    _, result = await run(agent)
    assert seen == [("n1", "noop")]
    assert result.stop_reason == "answer"


def test_state_of_a_pause_is_plain_json() -> None:
    async def main() -> str:
        bank = Bank()
        model = ScriptedModel(script())
        agent = Agent(client=model.async_client(), model="m", tools=bank.tools)
        _, paused = await run(agent)
        return str(paused.state.to_json())

    text = anyio.run(main)
    state = RunState.from_json(text)
    assert state.stop_reason == "approval_required"
    assert state.to_json() == text
