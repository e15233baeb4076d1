"""`AgentRun.cancel_call`: one tool call cancelled, the model told, the run going on.

Every case drives the real `openai` client over the scripted model's SSE, on asyncio
and trio; the consumer cancels a call when it sees it start (or wait), as a person
watching the run would.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Literal

import anyio
import anyio.to_thread
import pytest

from agentstream import (
    Agent,
    AgentRun,
    CallNotRunning,
    Session,
    SetupError,
    Timeouts,
    ToolCancelled,
    ToolContext,
    ToolFinished,
    ToolProgress,
    ToolQueued,
    ToolStarted,
    tool,
)
from agentstream.stores import MemoryStore
from agentstream.testing import Reply, ScriptedModel, ToolCall

from ._helpers import of

pytestmark = pytest.mark.anyio

Api = Literal["chat", "responses"]
WIRES = [pytest.param("chat", id="chat"), pytest.param("responses", id="responses")]
TOLD = "Cancelled by the user before the tool finished; there is no result."


class Tools:
    """A search that never ends unless cancelled, and a quick lookup."""

    def __init__(self) -> None:
        self.searches = 0
        self.search_cancelled = False

        @tool
        async def search(query: str) -> str:
            """Search for a long time."""
            self.searches += 1
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                self.search_cancelled = True
                raise
            return "never"  # pragma: no cover

        @tool
        async def lookup(key: str) -> str:
            """Look a key up."""
            return f"value of {key}"

        self.tools = [search, lookup]


def two_calls() -> list[Reply]:
    return [
        Reply(
            tool_calls=[
                ToolCall("search", {"query": "everything"}, id="s1"),
                ToolCall("lookup", {"key": "k"}, id="l1"),
            ]
        ),
        Reply("Done without the search."),
    ]


async def consume(run: AgentRun[Any], on_event: Any = None) -> list[Any]:
    """Every event of `run`; `on_event(event)` is called as each arrives."""
    events: list[Any] = []
    with anyio.fail_after(20):  # a call that is never cancelled must fail, not hang
        async for event in run:
            events.append(event)
            if on_event is not None:
                on_event(event)
    return events


def cancel_on_start(run: AgentRun[Any], call_id: str, reason: str | None) -> Any:
    def on_event(event: Any) -> None:
        if isinstance(event, ToolStarted) and event.id == call_id:
            run.cancel_call(call_id, reason)

    return on_event


def tool_messages(model: ScriptedModel, request: int) -> dict[str, str]:
    sent = model.requests[request].messages
    return {m["tool_call_id"]: m["content"] for m in sent if m["role"] == "tool"}


@pytest.mark.parametrize("wire", WIRES)
async def test_a_cancelled_call_is_answered_and_the_run_goes_on(wire: Api) -> None:
    tools = Tools()
    model = ScriptedModel(two_calls())
    agent = Agent(client=model.async_client(), model="m", tools=tools.tools, api=wire)
    async with agent.stream("go") as run:
        events = await consume(run, cancel_on_start(run, "s1", "the user found it elsewhere"))
    result = run.result
    assert tools.search_cancelled
    [cancelled] = of(events, ToolCancelled)
    assert (cancelled.id, cancelled.name, cancelled.reason) == ("s1", "search", cancelled.reason)
    assert cancelled.reason == "the user found it elsewhere"
    assert cancelled.answered
    assert not cancelled.finished
    finished = {event.id: event for event in of(events, ToolFinished)}
    assert finished["s1"].output == f"{TOLD} Reason: the user found it elsewhere"
    assert finished["s1"].error is None
    assert events.index(cancelled) < events.index(finished["s1"])
    assert finished["l1"].output == "value of k"
    # What the model sees next: the cancelled call answered as such, the other as usual.
    assert tool_messages(model, 1) == {
        "s1": f"{TOLD} Reason: the user found it elsewhere",
        "l1": "value of k",
    }
    assert result.stop_reason == "answer"
    assert result.output == "Done without the search."


async def test_a_cancel_without_a_reason_says_only_that() -> None:
    tools = Tools()
    model = ScriptedModel(two_calls())
    agent = Agent(client=model.async_client(), model="m", tools=tools.tools)
    async with agent.stream("go") as run:
        events = await consume(run, cancel_on_start(run, "s1", None))
    [cancelled] = of(events, ToolCancelled)
    assert cancelled.reason == ""
    assert tool_messages(model, 1)["s1"] == TOLD


async def test_a_sync_tool_sees_ctx_cancelled_and_stops() -> None:
    stopped = threading.Event()
    looked = threading.Event()

    @tool
    def crunch(ctx: ToolContext) -> str:
        """Crunch numbers for a long time, looking whether to stop."""
        deadline = time.monotonic() + 30  # never hang the test if the flag never turns
        ctx.progress(message="crunching")  # the consumer cancels once it runs
        while time.monotonic() < deadline:
            looked.set()
            if ctx.cancelled:
                stopped.set()
                return "stopped early"
            time.sleep(0.005)
        return "crunched"

    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("crunch", {}, id="c1")]), Reply("Fine, stopped.")]
    )
    agent = Agent(client=model.async_client(), model="m", tools=[crunch])
    async with agent.stream("go") as run:

        def on_event(event: Any) -> None:
            if isinstance(event, ToolProgress):  # its thread is running
                run.cancel_call("c1", "too slow")

        events = await consume(run, on_event)
    assert await anyio.to_thread.run_sync(stopped.wait, 20)
    assert looked.is_set()
    # The thread's own return never reaches the model: the cancel answers the call.
    assert tool_messages(model, 1) == {"c1": f"{TOLD} Reason: too slow"}
    assert [event.output for event in of(events, ToolFinished)] == [f"{TOLD} Reason: too slow"]
    assert run.result.output == "Fine, stopped."


async def test_unknown_finished_and_twice_cancelled_ids_raise_call_not_running() -> None:
    tools = Tools()
    model = ScriptedModel(two_calls())
    agent = Agent(client=model.async_client(), model="m", tools=tools.tools)
    errors: dict[str, str] = {}

    def attempt(label: str, call_id: str) -> None:
        with pytest.raises(CallNotRunning) as caught:
            run.cancel_call(call_id)
        errors[label] = str(caught.value)

    async with agent.stream("go") as run:
        attempt("before the run", "s1")

        def on_event(event: Any) -> None:
            if isinstance(event, ToolStarted) and event.id == "s1":
                attempt("unknown", "nope")
                with pytest.raises(SetupError, match="reason must be a string"):
                    run.cancel_call("s1", 42)  # type: ignore[arg-type]
                run.cancel_call("s1", "first")
                attempt("twice", "s1")
            elif isinstance(event, ToolFinished) and event.id == "l1":
                attempt("finished", "l1")

        events = await consume(run, on_event)
    attempt("after the run", "s1")
    assert issubclass(CallNotRunning, SetupError)
    assert set(errors) == {"before the run", "unknown", "twice", "finished", "after the run"}
    assert "'nope'" in errors["unknown"]
    assert "already finished or been cancelled" in errors["twice"]
    assert "already finished or been cancelled" in errors["finished"]
    assert len(of(events, ToolCancelled)) == 1
    assert run.result.stop_reason == "answer"


async def test_a_call_of_an_earlier_step_cannot_be_cancelled() -> None:
    tools = Tools()
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("lookup", {"key": "a"}, id="first")]),
            Reply(tool_calls=[ToolCall("search", {"query": "q"}, id="second")]),
            Reply("ok"),
        ]
    )
    agent = Agent(client=model.async_client(), model="m", tools=tools.tools)
    refused: list[str] = []
    async with agent.stream("go") as run:

        def on_event(event: Any) -> None:
            if isinstance(event, ToolStarted) and event.id == "second":
                try:
                    run.cancel_call("first")
                except CallNotRunning as exc:
                    refused.append(str(exc))
                run.cancel_call("second")

        await consume(run, on_event)
    assert len(refused) == 1
    assert tool_messages(model, 2)["second"] == TOLD


async def test_a_cancelled_call_is_final_in_the_saved_state_and_never_runs_again() -> None:
    runs: list[str] = []

    @tool
    async def search(query: str) -> str:
        """Search for a long time."""
        runs.append(query)
        await anyio.sleep_forever()
        return "never"  # pragma: no cover

    @tool(needs_approval=True)
    async def pay(amount: int) -> str:
        """Pay an amount."""
        runs.append(f"pay {amount}")
        return "paid"

    store = MemoryStore()
    model = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("search", {"query": "q"}, id="s1"),
                    ToolCall("pay", {"amount": 5}, id="p1"),
                ]
            ),
            Reply("Paid; search cancelled."),
        ]
    )
    agent = Agent(client=model.async_client(), model="m", tools=[search, pay])
    async with agent.stream("go", session=Session(store, "chat")) as run:
        await consume(run, cancel_on_start(run, "s1", "not needed"))
    assert run.result.stop_reason == "approval_required"
    saved = await Session(store, "chat").state()  # what the store holds
    assert saved is not None
    assert saved.pending is not None
    calls = {call.id: (call.status, call.output) for call in saved.pending.calls}
    assert calls["s1"] == ("finished", f"{TOLD} Reason: not needed")

    # Resume elsewhere, from the saved JSON alone: the search is not run a second time.
    again = Agent(client=model.async_client(), model="m", tools=[search, pay])
    async with again.resume_stream(saved.to_json(), approvals={"p1": True}) as resumed:
        events = await consume(resumed)
    assert runs == ["q", "pay 5"]
    assert [event.id for event in of(events, ToolStarted)] == ["p1"]
    assert tool_messages(model, 1) == {"s1": f"{TOLD} Reason: not needed", "p1": "paid"}
    assert resumed.result.output == "Paid; search cancelled."


async def test_an_early_started_call_can_be_cancelled() -> None:
    cancelled = anyio.Event()

    @tool(early=True)
    async def fetch(url: str, ctx: ToolContext) -> str:
        """Fetch a page."""
        try:
            await anyio.sleep_forever()
        finally:
            if ctx.early:
                cancelled.set()
        return "page"  # pragma: no cover

    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("fetch", {"url": "u"}, id="f1")]), Reply("Skipped it.")]
    )
    agent = Agent(client=model.async_client(), model="m", tools=[fetch], early_tools=True)
    async with agent.stream("go") as run:
        events = await consume(run, cancel_on_start(run, "f1", "stop"))
    assert cancelled.is_set()
    assert [event.id for event in of(events, ToolCancelled)] == ["f1"]
    assert tool_messages(model, 1) == {"f1": f"{TOLD} Reason: stop"}
    assert run.result.output == "Skipped it."


async def test_a_queued_call_cancelled_never_starts() -> None:
    tools = Tools()
    model = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("lookup", {"key": "a"}, id="l1"),
                    ToolCall("search", {"query": "q"}, id="s1"),
                    ToolCall("lookup", {"key": "b"}, id="l2"),
                ]
            ),
            Reply("ok"),
        ]
    )
    agent = Agent(client=model.async_client(), model="m", tools=tools.tools, max_concurrent_tools=1)
    async with agent.stream("go") as run:

        def on_event(event: Any) -> None:
            if isinstance(event, ToolQueued) and event.id == "s1":
                run.cancel_call("s1", "not now")

        events = await consume(run, on_event)
    assert tools.searches == 0
    assert [event.id for event in of(events, ToolStarted)] == ["l1", "l2"]
    assert [event.id for event in of(events, ToolQueued)] == ["s1", "l2"]
    assert tool_messages(model, 1) == {
        "l1": "value of a",
        "s1": f"{TOLD} Reason: not now",
        "l2": "value of b",
    }


async def test_a_sync_tool_past_its_timeout_sees_ctx_cancelled_too() -> None:
    stopped = threading.Event()

    @tool
    def crunch(ctx: ToolContext) -> str:
        """Crunch until told to stop."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not ctx.cancelled:
            time.sleep(0.005)
        if ctx.cancelled:
            stopped.set()
        return "stopped"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("crunch", {}, id="c1")]), Reply("ok")])
    agent = Agent(
        client=model.async_client(), model="m", tools=[crunch], timeouts=Timeouts(tool=0.2)
    )
    async with agent.stream("go") as run:
        events = await consume(run)
    assert await anyio.to_thread.run_sync(stopped.wait, 20)
    [finished] = of(events, ToolFinished)
    assert isinstance(finished.error, TimeoutError)
    assert not of(events, ToolCancelled)  # a timeout is not a cancel by the user
