"""Exactly-once decisions: a paused run claimed once in its store, whatever arrives twice;
turns at once on one session; store files readable by their owner alone; retention."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentstream import Agent, Approval, Session, SessionBusy, StateError, tool
from agentstream.stores import MemoryStore, SQLiteStore
from agentstream.testing import Reply, ScriptedModel, ToolCall

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "runs.db")


def paying_agent(ledger: Path) -> tuple[Agent[Any], ScriptedModel]:
    @tool(needs_approval=True)
    def pay(amount: int) -> str:
        """Pay someone."""
        with ledger.open("a") as f:
            f.write(f"paid {amount}\n")
        return "paid"

    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("pay", {"amount": 5}, id="p1")]), Reply("Paid.")]
    )
    return Agent(client=model.async_client(), model="m", tools=[pay]), model


async def approve(agent: Agent[Any], session: Session, outcomes: list[str]) -> None:
    try:
        result = await agent.resume(session=session, approvals={"p1": True})
    except (SessionBusy, StateError):  # held by the other, or already finished by it
        outcomes.append("refused")
    else:
        outcomes.append(str(result.output))


async def turn(agent: Agent[Any], session: Session, prompt: str, outcomes: dict[str, str]) -> None:
    try:
        outcomes[prompt] = str((await agent.run(prompt, session=session)).output)
    except (SessionBusy, StateError) as exc:
        outcomes[prompt] = type(exc).__name__


async def test_a_doubled_approval_runs_the_tool_once(store: Any, tmp_path: Path) -> None:
    for trial in range(20):
        ledger = tmp_path / f"ledger{trial}.txt"
        ledger.touch()
        agent, model = paying_agent(ledger)
        session = Session(store, f"s{trial}")
        paused = await agent.run("pay", session=session)
        assert paused.stop_reason == "approval_required"
        outcomes: list[str] = []
        async with anyio.create_task_group() as group:
            group.start_soon(approve, agent, session, outcomes)
            group.start_soon(approve, agent, session, outcomes)
        assert sorted(outcomes) == ["Paid.", "refused"], trial
        assert ledger.read_text() == "paid 5\n", trial
        assert len(model.requests) == 2
        saved = await session.state()
        assert saved is not None
        assert saved.finished


async def test_two_turns_at_once_on_one_session_lose_neither_silently(store: Any) -> None:
    for trial in range(20):
        model = ScriptedModel([Reply("one"), Reply("two")])
        agent = Agent(client=model.async_client(), model="m")
        session = Session(store, f"t{trial}")
        outcomes: dict[str, str] = {}
        async with anyio.create_task_group() as group:
            group.start_soon(turn, agent, session, "first", outcomes)
            group.start_soon(turn, agent, session, "second", outcomes)
        saved = await session.state()
        assert saved is not None
        said = [m["content"] for m in saved.messages if m["role"] == "user"]
        answered = [prompt for prompt, out in outcomes.items() if out in ("one", "two")]
        refused = [prompt for prompt, out in outcomes.items() if out not in ("one", "two")]
        assert said == answered, trial  # every turn that answered is in the session
        assert len(answered) + len(refused) == 2, trial
        assert answered, trial


async def test_a_run_left_early_frees_its_session(store: Any, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    agent, _ = paying_agent(ledger)
    session = Session(store, "s")
    await agent.run("pay", session=session)
    async with agent.resume_stream(session=session, approvals={"p1": False}) as run:
        async for _ in run:
            break  # left before it finished: the claim goes with it
    assert not await session.release()  # nothing left to free
    # The second resume may go on: the first freed the session when it was left.
    model = ScriptedModel([Reply("Not paid.")])
    again = agent.replace(client=model.async_client())
    result = await again.resume(session=session, approvals={"p1": False})
    assert result.output == "Not paid."


async def test_a_crashed_resume_is_freed_by_release(store: Any, tmp_path: Path) -> None:
    agent, _ = paying_agent(tmp_path / "ledger.txt")
    session = Session(store, "s")
    await agent.run("pay", session=session)
    saved = await session.state()
    assert saved is not None
    saved.stop_reason = None
    await session.save(saved, claim="run_dead/1")  # as a resumed run killed mid-way leaves it
    with pytest.raises(SessionBusy, match="release"):
        await agent.resume(session=session, approvals={"p1": True})
    assert not await session.release("run_other/2")  # only the holder's claim, if named
    assert await session.release()
    model = ScriptedModel([Reply("Paid.")])
    result = await agent.replace(client=model.async_client()).resume(
        session=session, approvals={"p1": True}
    )
    assert result.output == "Paid."


def test_sqlite_store_files_are_made_readable_by_their_owner_alone(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "runs.db"
        store = SQLiteStore(path)
        anyio.run(store.save, "k", "{}")
        with closing(sqlite3.connect(path)) as db:  # open: its -wal and -shm exist
            db.execute("INSERT INTO agentstream_states VALUES ('j', '{}', 0)")
            made = [path, *(tmp_path / f"runs.db{end}" for end in ("-wal", "-shm"))]
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in made if p.exists()}
    finally:
        os.umask(old)
    assert len(modes) == 3
    assert set(modes.values()) == {0o600}, modes


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("runs.db*"))


async def test_purge_forgets_old_runs_and_the_file_shrinks(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SQLiteStore(path)
    big = "x" * 200_000
    for number in range(30):
        await store.save(f"paused{number}", big)
    grown = size_of(tmp_path)
    assert [key for key, _ in await store.entries()] == [f"paused{n}" for n in range(30)]
    assert await store.purge(older_than=3600) == 0  # none is that old
    await store.save("fresh", "{}")
    gone = await store.purge(older_than=-1)  # everything is older than the future
    assert gone == 31
    assert await store.entries() == []
    shrunk = size_of(tmp_path)
    assert shrunk < grown / 10


async def test_memory_store_purge_and_entries() -> None:
    store = MemoryStore()
    await store.save("a", "1")
    await store.save("b", "2")
    assert [key for key, _ in await store.entries()] == ["a", "b"]
    assert await store.purge(older_than=3600) == 0
    assert await store.purge(older_than=-1) == 2
    assert store.documents == {}


# --- the decision recorded in the saved state (finding 6) -------------------------------


def two_payments(ledger: Path, replies: list[Reply]) -> Agent[Any]:
    @tool(needs_approval=True)
    def pay(amount: int) -> str:
        """Pay someone."""
        with ledger.open("a") as f:
            f.write(f"paid {amount}\n")
        return "paid"

    model = ScriptedModel(replies)
    return Agent(client=model.async_client(), model="m", tools=[pay])


async def paused_after_one_payment(ledger: Path) -> dict[str, Any]:
    """A run whose first payment was approved (by "alice") and made, the second waiting."""
    calls = [ToolCall("pay", {"amount": 5}, id="p1"), ToolCall("pay", {"amount": 900}, id="p2")]
    agent = two_payments(ledger, [Reply(tool_calls=calls)])
    paused = await agent.run("pay both")
    assert paused.state is not None
    again = await agent.resume(
        paused.state.to_json(), approvals={"p1": Approval.approve(by="alice")}
    )
    assert again.stop_reason == "approval_required"
    assert ledger.read_text() == "paid 5\n"
    assert again.state is not None
    saved: dict[str, Any] = json.loads(again.state.to_json())
    return saved


async def test_the_decision_is_recorded_with_who_when_and_what(tmp_path: Path) -> None:
    before = time.time()
    saved = await paused_after_one_payment(tmp_path / "ledger.txt")
    first, second = saved["pending"]["calls"]
    assert first["status"] == "finished"
    assert first["decision"]["approved"] is True
    assert first["decision"]["by"] == "alice"
    assert before <= first["decision"]["at"] <= time.time()
    assert len(first["decision"]["digest"]) == 64
    assert second["status"] == "awaiting_approval"
    assert second["decision"] is None


def tamper_ready(saved: dict[str, Any]) -> None:
    saved["pending"]["calls"][1]["status"] = "ready"


def tamper_borrowed(saved: dict[str, Any]) -> None:
    first, second = saved["pending"]["calls"]
    second["status"], second["decision"] = "ready", dict(first["decision"])


def tamper_arguments(saved: dict[str, Any]) -> None:
    first, second = saved["pending"]["calls"]
    second["decision"] = dict(first["decision"])
    second["status"], second["id"] = "ready", "p1x"
    saved["pending"]["assistant"]["tool_calls"][1]["id"] = "p1x"


def tamper_version_1(saved: dict[str, Any]) -> None:
    saved["version"] = 1
    for call in saved["pending"]["calls"]:
        del call["decision"]
    saved["pending"]["calls"][1]["status"] = "ready"


@pytest.mark.parametrize(
    ("tamper", "words"),
    [
        pytest.param(tamper_ready, "no approval is recorded", id="awaiting-to-ready"),
        pytest.param(tamper_borrowed, "other arguments", id="borrowed-decision"),
        pytest.param(tamper_arguments, "other arguments", id="decision-of-another-call"),
        pytest.param(tamper_version_1, "no approval is recorded", id="version-1-ready"),
    ],
)
async def test_a_state_tampered_into_running_a_gated_call_is_refused(
    tmp_path: Path, tamper: Any, words: str
) -> None:
    ledger = tmp_path / "ledger.txt"
    saved = await paused_after_one_payment(ledger)
    tamper(saved)
    agent = two_payments(ledger, [Reply("Paid.")])
    with pytest.raises(StateError, match=words):
        await agent.resume(json.dumps(saved))
    assert ledger.read_text() == "paid 5\n"  # the second payment never ran


async def test_a_version_1_state_waiting_for_approval_still_resumes(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    saved = await paused_after_one_payment(ledger)
    saved["version"] = 1
    for call in saved["pending"]["calls"]:
        del call["decision"]
    agent = two_payments(ledger, [Reply("Paid.")])
    result = await agent.resume(json.dumps(saved), approvals={"p2": True})
    assert result.output == "Paid."
    assert ledger.read_text() == "paid 5\npaid 900\n"


async def test_sqlite_store_purges_past_its_retention_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SQLiteStore(path)
    await store.save("old", "x" * 100_000)
    with closing(sqlite3.connect(path)) as db, db:  # saved 40 days ago
        db.execute("UPDATE agentstream_states SET updated = updated - 40 * 86400")
    await store.save("new", "{}")
    assert [key for key, _ in await SQLiteStore(path, retention=None).entries()] == ["old", "new"]
    assert [key for key, _ in await SQLiteStore(path).entries()] == ["new"]  # 30 days
