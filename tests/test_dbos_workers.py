"""Many durable workers: heartbeats, one claimer winning a stale worker, the fence of a
worker taken over while only slow, and a worker drained with SIGTERM on real Postgres
(its runs in flight finish on it or are handed off at once, and finish on another).
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from pathlib import Path

import anyio
import pytest

pytest.importorskip("dbos", reason="the dbos extra is not installed (pip install -e '.[dbos]')")

from agentstream import RunFinished, SetupError
from agentstream.dbos import EventLog, Worker
from agentstream.testing import ScriptedModel, serve

from .test_dbos import Model, kill, postgres, raw_lines, spawn, wait_for

__all__ = ["postgres"]  # the fixture, used by name

pytestmark = pytest.mark.anyio


def aged(worker: Worker, seconds: float) -> None:
    """Move the worker's last beat `seconds` into the past (a worker that stopped beating)."""
    table = worker._table
    with worker._db().begin() as connection:
        connection.execute(
            table.update().where(table.c.name == worker.name).values(beat=table.c.beat - seconds)
        )


def race(claimers: list[Worker], name: str) -> list[bool]:
    """Every claimer claims `name` at the same instant, each from its own thread."""
    start = threading.Barrier(len(claimers))
    won: list[bool] = [False] * len(claimers)

    def claim(n: int) -> None:
        start.wait()
        won[n] = claimers[n].claim(name)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(len(claimers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won


def claim_once(url: str) -> None:
    dead = Worker(url, "dead", stale=5)
    claimers = [Worker(url, f"live-{n}", stale=5) for n in range(6)]
    try:
        assert dead.register()
        assert all(c.register() for c in claimers)
        assert dead.name not in claimers[0].claimable()  # fresh: nobody may claim it
        assert race(claimers, "dead").count(True) == 0
        aged(dead, 60)
        assert claimers[0].claimable() == ["dead"]
        assert race(claimers, "dead").count(True) == 1  # one claimer wins
        assert not dead.renew()  # it wakes up: its row is gone to another
        assert dead.lost
        assert not dead.fresh()
        assert not dead.register()  # a restart under its name waits for the claim to end
    finally:
        for worker in [dead, *claimers]:
            worker.close()


def test_one_claimer_wins_a_stale_worker_on_sqlite(tmp_path: Path) -> None:
    claim_once(f"sqlite:///{tmp_path / 'workers.sqlite'}")


def test_one_claimer_wins_a_stale_worker_on_postgres(postgres: str) -> None:
    claim_once(postgres)


def test_a_leaving_worker_is_claimable_at_once_and_a_name_is_made(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'workers.sqlite'}"
    leaving, live = Worker(url, stale=3600), Worker(url, stale=3600)
    try:
        assert leaving.name != live.name
        assert leaving.name.startswith("worker-")
        assert leaving.register()
        assert live.register()
        assert live.claimable() == []
        leaving.leave()
        assert live.claimable() == [leaving.name]  # no waiting for an hour of silence
        assert live.claim(leaving.name)
        live.forget(leaving.name)
        assert live.claimable() == []
        assert leaving.register()  # started again under its name: a row of its own again
        assert leaving.renew()
    finally:
        leaving.close()
        live.close()


def test_a_worker_needs_a_database_url_and_sensible_seconds() -> None:
    with pytest.raises(SetupError):
        Worker("/tmp/x.db")
    with pytest.raises(SetupError):
        Worker("sqlite:///x.db", stale=0)


async def test_a_lost_worker_runs_no_step_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'workers.sqlite'}"
    slow, live = Worker(url, "slow", stale=5), Worker(url, "live", stale=5)
    ran: list[str] = []

    async def step(name: str) -> str:
        ran.append(name)
        return name

    guarded = slow.fence(step)
    try:
        assert await anyio.to_thread.run_sync(slow.register)
        assert await guarded("before") == "before"  # a fresh lease: the step runs
        await anyio.to_thread.run_sync(aged, slow, 60)
        assert await anyio.to_thread.run_sync(live.register)
        assert await anyio.to_thread.run_sync(live.claim, "slow")
        assert not await anyio.to_thread.run_sync(slow.renew)  # it wakes: claimed
        with anyio.move_on_after(0.5) as waited:
            await guarded("after")  # never starts, never ends
        assert waited.cancelled_caught
        assert ran == ["before"]
    finally:
        slow.close()
        live.close()


async def test_a_step_cut_by_the_hand_off_sends_no_error_into_the_run(tmp_path: Path) -> None:
    worker = Worker(f"sqlite:///{tmp_path / 'workers.sqlite'}", "w", stale=5)

    async def step() -> None:
        worker.fenced = True  # the hand-off happens while the step runs ...
        raise RuntimeError("database closed")  # ... and cuts it

    try:
        assert await anyio.to_thread.run_sync(worker.register)
        with anyio.move_on_after(0.5) as waited:
            await worker.fence(step)()
        assert waited.cancelled_caught  # it waits for the process's end, no error raised
    finally:
        worker.close()


async def follow(log: EventLog, run: str, seen: list[int], finished: set[str]) -> None:
    """A client reading the run's events to its end."""
    async for seq, event in log.read(run):
        seen.append(seq)
        if isinstance(event, RunFinished):
            finished.add(run)
            return


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # one backend: it takes a minute
async def test_sigterm_drains_a_worker_and_hands_off_what_it_could_not_finish(
    postgres: str, tmp_path: Path, anyio_backend: str
) -> None:
    ledger = tmp_path / "ledger"
    model = Model()
    runs = 8
    long = ["run-0", "run-1"]  # their slow tool outlasts the grace period: handed off
    # Staleness an hour away: only the `leaving` mark can hand the runs off in time.
    env = {"STALE": "3600", "BEAT": "0.3", "GRACE": "8", "LONG_RUNS": ",".join(long),
           "LONG_SLEEP": "30"}  # fmt: skip
    log = EventLog(postgres, poll=0.1)
    seen: dict[str, list[int]] = {f"run-{n}": [] for n in range(runs)}
    finished: set[str] = set()
    async with anyio.create_task_group() as group:
        port = await group.start(serve, ScriptedModel(model))
        first = spawn(
            postgres, port, ledger, "drained", "serve", str(runs), sleep=3, at_once=runs,
            more_env=env, log=tmp_path / "drained.log",
        )  # fmt: skip
        other = None
        try:
            for run in seen:
                group.start_soon(follow, log, run, seen[run], finished)
            every_slow = [f"start slow run-{n} drained" for n in range(runs)]
            await wait_for(
                lambda: all(line in raw_lines(ledger) for line in every_slow), 120, "all slow"
            )
            first.send_signal(signal.SIGTERM)
            await wait_for(lambda: "draining drained" in raw_lines(ledger), 60, "the drain")
            other = spawn(
                postgres, port, ledger, "-", "serve", "0", sleep=0, at_once=runs,
                more_env=env, log=tmp_path / "other.log",
            )  # fmt: skip
            with anyio.fail_after(120):
                await anyio.to_thread.run_sync(first.wait)  # it exits by itself
            await wait_for(lambda: len(finished) == runs, 120, "every run finished")
        finally:
            for process in (first, other):
                if process is not None and process.poll() is None:
                    kill(process)
        group.cancel_scope.cancel()
    log.close()
    assert first.returncode == 0
    lines = raw_lines(ledger)
    assert "left drained" in lines
    after_term = lines[lines.index("draining drained") :]
    # Some runs finished on the draining worker within its grace period ...
    assert any(x.startswith("end slow") and x.endswith(" drained") for x in after_term)
    # ... the long ones were handed off and finished on the other worker,
    for run in long:
        assert f"end slow {run} drained" not in lines
        ends = [x for x in lines if x.startswith(f"end slow {run} ")]
        assert len(ends) == 1
        assert not ends[0].endswith(" drained")
    # no finished tool ran twice, no finished model step was asked again,
    ended = Counter(x.rsplit(" ", 1)[0] for x in lines if x.startswith("end "))
    assert all(count == 1 for count in ended.values()), ended
    assert len(ended) == 2 * runs
    assert all(count == 1 for count in model.asked.values()), model.asked
    # and every client saw its run from 0 to RunFinished with no gap and no duplicate.
    for run, seqs in seen.items():
        assert seqs == list(range(len(seqs))), run
