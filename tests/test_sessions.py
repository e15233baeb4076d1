"""Sessions and checkpoints: a conversation kept across runs, and a run that survives
`kill -9` without running a finished tool again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import openai
import pytest

from agentstream import Agent, Session, StateError, StoreError, ToolFinished, tool
from agentstream.stores import MemoryStore, SQLiteStore
from agentstream.testing import Reply, ScriptedModel, ToolCall, serve

from ._helpers import of

pytestmark = pytest.mark.anyio


@tool
def get_weather(city: str) -> str:
    """Weather in a city."""
    return f"sunny in {city}"


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "chat.db")


async def test_a_session_continues_the_conversation_across_runs(store: Any) -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="p")]),
            Reply("Sunny in Paris."),
            Reply("Also sunny in Tokyo."),
        ]
    )
    session = Session(store, "alice")
    agent = Agent(client=model.async_client(), model="m", tools=[get_weather], instructions="Hi.")
    first = await agent.run("Weather in Paris?", session=session)
    # A new agent object, as a later process would make.
    again = Agent(client=model.async_client(), model="m", tools=[get_weather], instructions="Hi.")
    second = await again.run("and in Tokyo?", session=session)
    sent = model.requests[2].messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert sent[-1] == {"role": "user", "content": "and in Tokyo?"}
    assert second.output == "Also sunny in Tokyo."
    assert second.run_id != first.run_id
    assert [m["role"] for m in second.new_messages] == ["assistant"]
    saved = await session.state()
    assert saved is not None
    assert saved.finished
    assert saved.messages[-1]["content"] == "Also sunny in Tokyo."


async def test_checkpoints_follow_every_step_and_tool_call() -> None:
    store = MemoryStore()
    model = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("get_weather", {"city": "Paris"}, id="a"),
                    ToolCall("get_weather", {"city": "Rome"}, id="b"),
                ]
            ),
            Reply("Both sunny."),
        ]
    )
    agent = Agent(client=model.async_client(), model="m", tools=[get_weather])
    await agent.run("Weather?", session=Session(store, "s"))
    # the claim at the start, calls sorted, the batch of both starting, 2 finishes,
    # step 1 done, the end of the run
    assert store.saves == 7


async def test_an_unfinished_session_is_not_continued_by_accident() -> None:
    store = MemoryStore()

    @tool(needs_approval=True)
    def book(city: str) -> str:
        """Book a trip."""
        return "booked"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("book", {"city": "Rome"}, id="b1")])])
    agent = Agent(client=model.async_client(), model="m", tools=[book])
    session = Session(store, "s")
    paused = await agent.run("book Rome", session=session)
    assert paused.stop_reason == "approval_required"
    with pytest.raises(StateError, match="unfinished run"):
        await agent.run("something else", session=session)
    later = ScriptedModel([Reply("Booked.")])
    agent2 = Agent(client=later.async_client(), model="m", tools=[book])
    done = await agent2.resume(session=session, approvals={"b1": True})
    assert done.output == "Booked."
    await session.clear()
    assert await session.state() is None


async def test_a_store_that_fails_is_a_typed_error() -> None:
    class Broken(MemoryStore):
        async def save(self, key: str, document: str) -> None:
            raise OSError("disk full")

    model = ScriptedModel([Reply("hi")])
    agent = Agent(client=model.async_client(), model="m")
    with pytest.raises(StoreError, match="could not save"):
        await agent.run("hi", session=Session(Broken(), "s"))


# --- crash recovery: kill -9 mid-tool, then resume -------------------------------------

WORKER = textwrap.dedent(
    """
    import sys, time, anyio, openai
    from pathlib import Path
    from agentstream import Agent, Session, tool
    from agentstream.stores import SQLiteStore

    port, db, ledger, idempotent = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]

    @tool
    def record(note: str) -> str:
        \"\"\"Write a note.\"\"\"
        with ledger.open("a") as f:
            f.write(f"record {note}\\n")
        return "noted"

    @tool(concurrent=False, idempotent=idempotent == "yes")
    def slow(note: str) -> str:
        \"\"\"A slow job.\"\"\"
        with ledger.open("a") as f:
            f.write(f"slow {note}\\n")
        time.sleep(120)
        return "slow done"

    async def main() -> None:
        client = openai.AsyncOpenAI(api_key="k", base_url=f"http://127.0.0.1:{port}/v1")
        agent = Agent(client=client, model="m", tools=[record, slow])
        await agent.run("go", session=Session(SQLiteStore(db), "job"))

    anyio.run(main)
    """
)


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
async def test_a_run_killed_mid_tool_resumes_without_repeating_finished_tools(
    tmp_path: Path, idempotent: bool
) -> None:
    ledger = tmp_path / "ledger.txt"
    ledger.touch()
    db = tmp_path / "runs.db"
    model = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("record", {"note": "first"}, id="r1"),
                    ToolCall("slow", {"note": "second"}, id="s1"),
                ]
            ),
            Reply("All done."),
        ]
    )
    async with anyio.create_task_group() as server:
        port = await server.start(serve, model)
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(port), str(db), str(ledger),
             "yes" if idempotent else "no"],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )  # fmt: skip
        try:
            with anyio.fail_after(60):
                while "slow second" not in ledger.read_text():
                    await anyio.sleep(0.05)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        assert ledger.read_text().splitlines() == ["record first", "slow second"]

        ran: list[str] = []

        @tool
        def record(note: str) -> str:
            """Write a note."""
            ran.append(f"record {note}")
            return "noted"

        @tool(concurrent=False, idempotent=idempotent)
        def slow(note: str) -> str:
            """A slow job."""
            ran.append(f"slow {note}")
            return "slow done"

        client = openai.AsyncOpenAI(api_key="k", base_url=f"http://127.0.0.1:{port}/v1")
        async with client:
            agent = Agent(client=client, model="m", tools=[record, slow])
            events: list[Any] = []
            with anyio.fail_after(30):
                async with agent.resume_stream(session=Session(SQLiteStore(db), "job")) as run:
                    async for event in run:
                        events.append(event)
        server.cancel_scope.cancel()

    result = run.result
    assert result.output == "All done."
    assert len(model.requests) == 2  # the first response is never asked for again
    assert ran == (["slow second"] if idempotent else [])  # "record first" never again
    told = {
        m["tool_call_id"]: m["content"] for m in model.requests[1].messages if m["role"] == "tool"
    }
    assert told["r1"] == "noted"
    if idempotent:
        assert told["s1"] == "slow done"
    else:
        assert told["s1"].startswith("outcome unknown")
    assert [e.id for e in of(events, ToolFinished)] == (["s1"] if idempotent else [])
