"""Steering a run: `AgentRun.send` queues a user message, delivered at the next step
boundary (after the step's tool results), kept in the saved state until then; through the
scripted model's real SSE on both wires, on asyncio and trio."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from agentstream import (
    Agent,
    ApprovalRequested,
    MessageDelivered,
    MessageQueued,
    RunState,
    Session,
    SetupError,
    StateError,
    StepFinished,
    StepStarted,
    ToolCallReady,
    ToolFinished,
    ToolStarted,
    tool,
)
from agentstream.stores import MemoryStore
from agentstream.testing import Reply, ScriptedModel, ToolCall

from ._helpers import Recorder, of

pytestmark = pytest.mark.anyio

WIRES = [pytest.param("chat", id="chat"), pytest.param("responses", id="responses")]


async def steered(agent: Agent, sends: dict[type, str], **options: Any) -> tuple[list[Any], Any]:
    """Run `agent`, sending `sends[kind]` when the first event of that kind arrives."""
    events: list[Any] = []
    with anyio.fail_after(20):
        async with agent.stream("go", **options) as run:
            async for event in run:
                events.append(event)
                text = sends.pop(type(event), None)
                if text is not None:
                    run.send(text)
    return events, run


@pytest.mark.parametrize("api", WIRES)
async def test_a_message_sent_while_a_tool_runs_joins_after_its_result(api: str) -> None:
    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("act", id="c1")]), Reply("Done, and Paris too.")]
    )
    recorder = Recorder()
    agent = Agent(client=model.async_client(), model="m", tools=[recorder.tool], api=api)  # type: ignore[arg-type]
    events, run = await steered(agent, {ToolStarted: "Also check Paris."})

    sent = model.requests[1].messages
    assert [message["role"] for message in sent[-3:]] == ["assistant", "tool", "user"]
    assert sent[-2]["tool_call_id"] == "c1"
    assert sent[-1]["content"] == "Also check Paris."
    assert len(model.requests[0].messages) == 1  # the first request did not carry it
    (queued,) = of(events, MessageQueued)
    (delivered,) = of(events, MessageDelivered)
    assert (queued.step, queued.text) == (1, "Also check Paris.")
    assert (delivered.step, delivered.id, delivered.text) == (2, queued.id, queued.text)
    assert run.result.messages[delivered.position]["content"] == "Also check Paris."
    order = [type(event) for event in events]
    assert order.index(MessageQueued) < order.index(MessageDelivered)
    second_step = next(
        i for i, e in enumerate(events) if isinstance(e, StepStarted) and e.step == 2
    )
    assert order.index(MessageDelivered) < second_step
    assert run.result.stop_reason == "answer"
    assert run.state.queued == []


@pytest.mark.parametrize("api", WIRES)
async def test_a_message_sent_after_the_final_answer_takes_one_more_step(api: str) -> None:
    model = ScriptedModel([Reply("Sunny in Rome."), Reply("Paris: rain.")])
    agent = Agent(client=model.async_client(), model="m", api=api)  # type: ignore[arg-type]
    events, run = await steered(agent, {StepFinished: "And Paris?"})

    assert len(model.requests) == 2
    sent = model.requests[1].messages
    assert [(m["role"], m["content"]) for m in sent[-2:]] == [
        ("assistant", "Sunny in Rome."),
        ("user", "And Paris?"),
    ]
    assert run.result.output == "Paris: rain."
    assert len(run.result.steps) == 2
    assert of(events, MessageDelivered)[0].step == 2


async def test_no_extra_step_past_the_step_limit_the_message_stays_queued() -> None:
    model = ScriptedModel([Reply("Sunny.")])
    agent = Agent(client=model.async_client(), model="m", max_steps=1)
    events, run = await steered(agent, {StepFinished: "And Paris?"})

    assert len(model.requests) == 1
    assert run.result.stop_reason == "answer"
    assert [message["text"] for message in run.result.state.queued] == ["And Paris?"]
    assert of(events, MessageDelivered) == []


async def test_send_refuses_an_ended_run_and_a_text_that_is_not_one() -> None:
    model = ScriptedModel([Reply("Hi.")])
    agent = Agent(client=model.async_client(), model="m")
    async with agent.stream("go") as run:
        with pytest.raises(SetupError, match="non-empty string"):
            run.send(["not", "text"])  # type: ignore[arg-type]
        async for _ in run:
            pass
    with pytest.raises(SetupError, match="has ended"):
        run.send("too late")


@pytest.mark.parametrize("api", WIRES)
async def test_a_message_queued_before_a_pause_is_delivered_after_the_resume(api: str) -> None:
    ran: list[str] = []

    @tool(needs_approval=True)
    def transfer(amount: int) -> str:
        """Send money."""
        ran.append(f"transfer {amount}")
        return "sent"

    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("transfer", {"amount": 5}, id="c1")]), Reply("Sent, in euros.")]
    )
    agent = Agent(client=model.async_client(), model="m", tools=[transfer], api=api)  # type: ignore[arg-type]
    _, paused = await steered(agent, {ApprovalRequested: "Use euros."})
    assert paused.result.stop_reason == "approval_required"
    saved = paused.result.state.to_json()
    assert '"text":"Use euros."' in saved
    assert len(model.requests) == 1

    events: list[Any] = []
    with anyio.fail_after(20):
        async with agent.resume_stream(RunState.from_json(saved), approvals={"c1": True}) as run:
            async for event in run:
                events.append(event)

    assert ran == ["transfer 5"]
    sent = model.requests[1].messages
    assert [message["role"] for message in sent[-3:]] == ["assistant", "tool", "user"]
    assert sent[-1]["content"] == "Use euros."
    (delivered,) = of(events, MessageDelivered)
    assert delivered.step == 2
    assert run.result.output == "Sent, in euros."


async def test_a_message_sent_before_a_crash_is_delivered_when_the_session_resumes() -> None:
    model = ScriptedModel([Reply(tool_calls=[ToolCall("act", id="c1")]), Reply("Done.")])
    recorder = Recorder()
    agent = Agent(client=model.async_client(), model="m", tools=[recorder.tool])
    session = Session(MemoryStore(), "s")
    with anyio.fail_after(20):
        async with agent.stream("go", session=session) as run:
            async for event in run:
                if isinstance(event, ToolCallReady):
                    run.send("Hurry.")
                if isinstance(event, ToolStarted):
                    break  # the process dies while the tool runs: saved, not finished
        result = await agent.resume(session=session)

    sent = model.requests[1].messages
    assert [message["role"] for message in sent[-3:]] == ["assistant", "tool", "user"]
    assert sent[-1]["content"] == "Hurry."
    assert result.stop_reason == "answer"
    assert result.state is not None
    assert result.state.queued == []


def test_the_queue_round_trips_through_json_and_an_older_state_reads_as_empty() -> None:
    state = RunState.start("run_1", [{"role": "user", "content": "hi"}])
    state.queued.append({"id": "msg_1", "text": "Also this.", "step": 0})
    again = RunState.from_json(state.to_json())
    assert again.queued == state.queued
    older = state.to_dict()
    del older["queued"]
    assert RunState.from_dict(older).queued == []


@pytest.mark.parametrize(
    "queued",
    [
        pytest.param({"id": "m"}, id="not-a-list"),
        pytest.param([{"id": "m", "text": 3, "step": 0}], id="text-not-a-string"),
        pytest.param([{"id": "m", "text": "x", "step": -1}], id="negative-step"),
        pytest.param([{"id": "m", "text": "x", "step": 0, "role": "system"}], id="extra-field"),
    ],
)
def test_a_tampered_queue_is_refused(queued: Any) -> None:
    data = RunState.start("run_1", [{"role": "user", "content": "hi"}]).to_dict()
    data["queued"] = queued
    with pytest.raises(StateError):
        RunState.from_dict(data)


def test_a_sync_run_is_steered_from_its_own_thread() -> None:
    model = ScriptedModel([Reply(tool_calls=[ToolCall("act", id="c1")]), Reply("Done.")])
    recorder = Recorder()
    agent = Agent(client=model.async_client, model="m", tools=[recorder.tool])
    run = agent.stream_sync("go")
    with pytest.raises(SetupError, match="under way"):
        run.send("too early")
    with run:
        for event in run:
            if isinstance(event, ToolStarted):
                run.send("Also this.")
    assert model.requests[1].messages[-1] == {"role": "user", "content": "Also this."}
    assert run.result.output == "Done."


async def run_steered_from_a_task(agent: Agent, release: Any) -> tuple[list[Any], Any]:
    """Run `agent`; once its tool has started, a task of its own (a web handler, say)
    sends two messages; `release()` lets the tool end once the second is reported."""
    events: list[Any] = []
    started = anyio.Event()
    with anyio.fail_after(20):
        async with agent.stream("go") as run, anyio.create_task_group() as group:

            async def steer() -> None:
                await started.wait()
                run.send("First.")
                await anyio.sleep(0)
                run.send("Second.")

            group.start_soon(steer)
            async for event in run:
                events.append(event)
                if isinstance(event, ToolStarted):
                    started.set()
                if isinstance(event, MessageQueued) and event.text == "Second.":
                    release()
    return events, run


@pytest.mark.parametrize(
    ("api", "kind"),
    [
        pytest.param("chat", "async", id="async-tool-chat"),
        pytest.param("responses", "async", id="async-tool-responses"),
        pytest.param("chat", "thread", id="sync-tool-chat"),
    ],
)
async def test_a_message_sent_while_a_tool_runs_is_reported_before_the_tool_ends(
    api: str, kind: str
) -> None:
    # The tool ends only once the consumer has seen the second `MessageQueued`: were
    # they reported with the run's next event (the tool's end), the run would hang.
    gate, thread_gate = anyio.Event(), threading.Event()

    @tool
    async def slow() -> str:
        """Work until told."""
        await gate.wait()
        return "slow done"

    @tool
    def blocking() -> str:
        """Work in a thread until told."""
        thread_gate.wait(20)
        return "blocking done"

    name = "slow" if kind == "async" else "blocking"
    model = ScriptedModel([Reply(tool_calls=[ToolCall(name, id="c1")]), Reply("ok")])
    agent = Agent(client=model.async_client(), model="m", tools=[slow, blocking], api=api)  # type: ignore[arg-type]
    try:
        events, run = await run_steered_from_a_task(
            agent, gate.set if kind == "async" else thread_gate.set
        )
    finally:
        thread_gate.set()
    order = [type(event) for event in events]
    assert [event.text for event in of(events, MessageQueued)] == ["First.", "Second."]
    last_queued = max(i for i, event in enumerate(order) if event is MessageQueued)
    assert last_queued < order.index(ToolFinished)
    assert [m["content"] for m in model.requests[1].messages[-2:]] == ["First.", "Second."]
    assert run.result.output == "ok"
