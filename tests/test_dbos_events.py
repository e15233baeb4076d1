"""The event log of durable runs, with real parts: a worker process runs the workflow
(DBOS, SQLite or a real Postgres), the test reads the run's events from its own process
through `EventLog`, live, mid-run and after the end, and across a `kill -9` of the worker.

Readers run on asyncio and trio (the log needs no DBOS in the reading process).
"""

from __future__ import annotations

import uuid
from collections import Counter
from contextlib import aclosing
from pathlib import Path

import anyio
import pytest

pytest.importorskip("dbos", reason="the dbos extra is not installed (pip install -e '.[dbos]')")

from agentstream import (
    Event,
    RunFinished,
    StepInterrupted,
    StepStarted,
    TextDelta,
    ToolFinished,
    ToolStarted,
)
from agentstream.dbos import EventLog
from agentstream.dbos._codec import encode
from agentstream.testing import Fault, ModelRequest, Reply, ScriptedModel, ToolCall, serve

from .test_dbos import Model, kill, lines, postgres, spawn, wait_for

__all__ = ["postgres"]  # the fixture, used by name

pytestmark = pytest.mark.anyio

Seen = list[tuple[int, str]]


async def read(log: EventLog, workflow_id: str, into: Seen, *, after: int = -1) -> None:
    """Read the run's events into `into` (seq and the event as stored) to the end."""
    async for seq, event in log.read(workflow_id, after=after):
        into.append((seq, encode(event)))


def events(seen: Seen) -> list[Event]:
    from agentstream.dbos._codec import decode

    return [decode(text) for _, text in seen]


def check_whole(seen: Seen) -> None:
    """Gapless from 0, no duplicate, ends with RunFinished."""
    assert [seq for seq, _ in seen] == list(range(len(seen)))
    assert isinstance(events(seen)[-1], RunFinished)


async def test_late_and_midway_readers_see_what_a_live_reader_saw(tmp_path: Path) -> None:
    ledger, db = tmp_path / "ledger", f"sqlite:///{tmp_path / 'dbos.sqlite'}"
    log = EventLog(db)
    live: Seen = []
    midway: Seen = []
    late: Seen = []
    async with anyio.create_task_group() as group:
        port = await group.start(serve, ScriptedModel(Model()))
        worker = spawn(db, port, ledger, "worker-1", "run", "job-1", sleep=1)
        try:
            with anyio.fail_after(120):
                async with anyio.create_task_group() as readers:
                    readers.start_soon(read, log, "job-1", live)  # before the run exists
                    await wait_for(lambda: "start slow job-1" in lines(ledger), 90, "the tool")
                    readers.start_soon(read, log, "job-1", midway)
        finally:
            kill(worker)
        await read(log, "job-1", late)
        group.cancel_scope.cancel()
    log.close()
    check_whole(live)
    assert midway == live
    assert late == live
    kinds = [event.type for event in events(live)]
    assert kinds[0] == "run_started"
    assert kinds.count("tool_started") == 2
    assert kinds.count("tool_finished") == 2
    text = "".join(e.text for e in events(live) if isinstance(e, TextDelta))
    assert text == "done job-1"
    result = events(live)[-1]
    assert isinstance(result, RunFinished)
    assert result.result.output == "done job-1"


async def crash_mid_tool(db: str, tmp_path: Path, job: str) -> tuple[Seen, Seen, Seen, Model, Path]:
    """A run killed inside its slow tool and recovered; what three readers saw.

    `live` reads throughout; `client` reads until the slow tool starts, leaves, and
    comes back after the restart with the last seq it saw; `late` reads at the end.
    """
    ledger = tmp_path / "ledger"
    log = EventLog(db)
    model = Model()
    live: Seen = []
    client: Seen = []
    late: Seen = []
    async with anyio.create_task_group() as group:
        port = await group.start(serve, ScriptedModel(model))
        first = spawn(db, port, ledger, "worker-1", "run", job, sleep=120)
        group.start_soon(read, log, job, live)
        try:
            async with aclosing(log.read(job)) as reading:
                async for seq, event in reading:
                    client.append((seq, encode(event)))
                    if isinstance(event, ToolStarted) and event.name == "slow":
                        break  # the client goes away while the tool runs
            await wait_for(lambda: f"start slow {job}" in lines(ledger), 90, "the slow tool")
        finally:
            kill(first)
        again = spawn(db, port, ledger, "worker-1", "recover", sleep=0)
        try:
            with anyio.fail_after(120):
                await read(log, job, client, after=client[-1][0])
                await read(log, job, late)
                await wait_for(lambda: len(live) == len(late), 60, "the live reader")
        finally:
            kill(again)
        group.cancel_scope.cancel()
    log.close()
    return live, client, late, model, ledger


def check_crash(job: str, live: Seen, client: Seen, late: Seen, model: Model, ledger: Path) -> None:
    check_whole(live)
    assert client == live
    assert late == live
    ran: Counter[str] = Counter(lines(ledger))
    assert ran[f"end record {job}"] == 1  # finished before the kill: not run again
    assert ran[f"start slow {job}"] == 2  # cut by the kill: run again (a step)
    assert ran[f"end slow {job}"] == 1
    assert model.asked[(job, 1)] == 1  # the finished model step was not asked again
    assert model.asked[(job, 2)] == 1
    seen = events(live)
    started = [e.name for e in seen if isinstance(e, ToolStarted)]
    finished = [e.name for e in seen if isinstance(e, ToolFinished)]
    assert started == ["record", "slow"]  # the replay's own ToolStarted is not shown again
    assert finished == ["record", "slow"]
    assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == f"done {job}"


async def test_sqlite_readers_across_a_kill_mid_tool(tmp_path: Path) -> None:
    job = "job-sqlite"
    check_crash(job, *await crash_mid_tool(f"sqlite:///{tmp_path / 'dbos.sqlite'}", tmp_path, job))


async def test_postgres_readers_across_a_kill_mid_tool(postgres: str, tmp_path: Path) -> None:
    job = f"job-{uuid.uuid4().hex[:8]}"  # the cluster is shared by the module's tests
    check_crash(job, *await crash_mid_tool(postgres, tmp_path, job))


def test_a_log_refuses_a_url_it_cannot_use() -> None:
    from agentstream import SetupError

    with pytest.raises(SetupError):
        EventLog("mysql://x")


ANSWER = "the long answer, streamed in many small pieces, " * 4


class StallingModel:
    """One tool call, then an answer whose first asking stalls mid-stream (a slow model)."""

    def __init__(self) -> None:
        self.asked: Counter[int] = Counter()

    def __call__(self, request: ModelRequest) -> Reply:
        step = sum(1 for m in request.messages if m["role"] == "assistant") + 1
        self.asked[step] += 1
        if step == 1:
            return Reply(tool_calls=[ToolCall("record", {"topic": "job-1"}, id="r-1")])
        if self.asked[step] == 1:
            return Reply(ANSWER, piece_size=3, fault=Fault(stall_after=6, stall_seconds=120))
        return Reply(ANSWER, piece_size=3)


async def test_a_model_step_cut_by_a_kill_is_shown_withdrawn(tmp_path: Path) -> None:
    ledger, db = tmp_path / "ledger", f"sqlite:///{tmp_path / 'dbos.sqlite'}"
    log = EventLog(db)
    model = StallingModel()
    live: Seen = []
    async with anyio.create_task_group() as group:
        port = await group.start(serve, ScriptedModel(model))
        first = spawn(db, port, ledger, "worker-1", "run", "job-1", sleep=0)
        group.start_soon(read, log, "job-1", live)
        try:
            # The answer's first pieces are in the log while its request still streams.
            await wait_for(
                lambda: '"step":2' in str(live) and "text_delta" in str(live), 90, "text"
            )
        finally:
            kill(first)
        again = spawn(db, port, ledger, "worker-1", "recover", sleep=0)
        try:
            await wait_for(lambda: bool(live) and "run_finished" in live[-1][1], 90, "the end")
        finally:
            kill(again)
        group.cancel_scope.cancel()
    late: Seen = []
    await read(log, "job-1", late)
    log.close()
    check_whole(live)
    assert late == live
    seen = events(live)
    cut = next(n for n, e in enumerate(seen) if isinstance(e, StepInterrupted))
    shown = "".join(e.text for e in seen[:cut] if isinstance(e, TextDelta) and e.step == 2)
    interrupted = seen[cut]
    assert isinstance(interrupted, StepInterrupted)
    assert interrupted.step == 2
    assert 0 < len(shown) < len(ANSWER)
    assert interrupted.retracted_text == shown  # exactly what was shown is withdrawn
    again_started = seen[cut + 1]
    assert isinstance(again_started, StepStarted)
    assert (again_started.step, again_started.attempt) == (2, 2)
    after = "".join(e.text for e in seen[cut:] if isinstance(e, TextDelta))
    assert after == ANSWER
    result = seen[-1]
    assert isinstance(result, RunFinished)
    assert result.result.output == ANSWER
    assert model.asked[1] == 1  # the finished model step was not asked again
    assert model.asked[2] == 2  # the cut one was
    assert Counter(lines(ledger))["end record job-1"] == 1
