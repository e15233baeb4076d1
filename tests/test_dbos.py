"""Durable runs on DBOS with real parts: worker processes killed with SIGKILL mid-run,
restarted, and every run completes without a finished tool or model step repeated.

SQLite for one machine; a real Postgres (Debian's `postgresql`, installed and started
here when missing) for two workers sharing a queue of 50 runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("dbos", reason="the dbos extra is not installed (pip install -e '.[dbos]')")

from dbos import DBOSClient

from agentstream.dbos._agent import NOT_RUN_AGAIN
from agentstream.testing import ModelRequest, Reply, ScriptedModel, ToolCall, serve

ROOT = Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "dbos_app" / "worker.py"
PG_BIN = Path("/usr/lib/postgresql/15/bin")

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # DBOS runs its async workflows on asyncio only


class Model:
    """Each run: one response calling `record` and `slow` on its prompt, then an answer."""

    def __init__(self) -> None:
        self.asked: Counter[tuple[str, int]] = Counter()
        self.told: dict[str, dict[str, str]] = {}  # prompt -> tool results the model read

    def __call__(self, request: ModelRequest) -> Reply:
        prompt = next(m["content"] for m in request.messages if m["role"] == "user")
        step = sum(1 for m in request.messages if m["role"] == "assistant") + 1
        self.asked[(prompt, step)] += 1
        second = "charge" if prompt.startswith("pay") else "slow"  # `charge`: not idempotent
        if step == 1:
            return Reply(
                tool_calls=[
                    ToolCall("record", {"topic": prompt}, id=f"r-{prompt}"),
                    ToolCall(second, {"topic": prompt}, id=f"s-{prompt}"),
                ]
            )
        self.told[prompt] = {
            m["tool_call_id"]: m["content"] for m in request.messages if m["role"] == "tool"
        }
        return Reply(f"done {prompt}")


def spawn(
    db: str,
    port: int,
    ledger: Path,
    executor: str,
    *action: str,
    sleep: float,
    at_once: int = 4,
    more_env: dict[str, str] | None = None,
    log: Path | None = None,
) -> Any:
    """A worker process; its stderr goes to `log` if given (a pipe nobody reads could fill)."""
    env = {
        **os.environ, "TOOL_SLEEP": str(sleep), "PYTHONPATH": str(ROOT),
        "WORKER_CONCURRENCY": str(at_once), **(more_env or {}),
    }  # fmt: skip
    with log.open("ab") if log is not None else contextlib.nullcontext() as errors:
        return subprocess.Popen(
            [sys.executable, str(WORKER), db, str(port), str(ledger), executor, *action],
            env=env, stdout=subprocess.DEVNULL,
            stderr=errors if errors is not None else subprocess.PIPE,
        )  # fmt: skip


def lines(ledger: Path) -> list[str]:
    """The ledger's lines, without the executor that wrote each."""
    return [line.rsplit(" ", 1)[0] for line in raw_lines(ledger)]


def raw_lines(ledger: Path) -> list[str]:
    return ledger.read_text().splitlines() if ledger.exists() else []


async def wait_for(condition: Any, seconds: float, what: str) -> None:
    with anyio.fail_after(seconds):
        while not condition():
            await anyio.sleep(0.05)


def kill(process: Any) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()
    if process.stderr is not None:
        process.stderr.close()


async def test_sqlite_a_run_killed_mid_tool_completes_once_restarted(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    db = f"sqlite:///{tmp_path / 'dbos.sqlite'}"
    model = Model()
    async with anyio.create_task_group() as server:
        port = await server.start(serve, ScriptedModel(model))
        first = spawn(db, port, ledger, "worker-1", "run", "job-1", sleep=120)
        try:
            await wait_for(lambda: "start slow job-1" in lines(ledger), 90, "the slow tool")
        finally:
            kill(first)
        again = spawn(db, port, ledger, "worker-1", "recover", sleep=0)
        try:
            client = DBOSClient(system_database_url=db)
            try:
                result: Any = await anyio.to_thread.run_sync(
                    lambda: client.retrieve_workflow("job-1").get_result()
                )
            finally:
                client.destroy()
        finally:
            kill(again)
        server.cancel_scope.cancel()
    assert result.output == "done job-1"
    seen = Counter(lines(ledger))
    assert seen["end record job-1"] == 1  # finished before the crash: never again
    assert seen["start slow job-1"] == 2  # running at the crash: run again (a step)
    assert seen["end slow job-1"] == 1
    assert model.asked[("job-1", 1)] == 1  # the finished model step was not asked again
    assert model.asked[("job-1", 2)] == 1


async def test_sqlite_a_tool_not_idempotent_cut_by_a_kill_is_not_run_again(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger"
    db = f"sqlite:///{tmp_path / 'dbos.sqlite'}"
    model = Model()
    async with anyio.create_task_group() as server:
        port = await server.start(serve, ScriptedModel(model))
        first = spawn(db, port, ledger, "worker-1", "run", "pay-1", sleep=120)
        try:
            await wait_for(lambda: "start charge pay-1" in lines(ledger), 90, "the charge")
        finally:
            kill(first)
        again = spawn(db, port, ledger, "worker-1", "recover", sleep=0)
        try:
            client = DBOSClient(system_database_url=db)
            try:
                result: Any = await anyio.to_thread.run_sync(
                    lambda: client.retrieve_workflow("pay-1").get_result()
                )
            finally:
                client.destroy()
        finally:
            kill(again)
        server.cancel_scope.cancel()
    assert result.output == "done pay-1"
    seen = Counter(lines(ledger))
    assert seen["start charge pay-1"] == 1  # begun before the crash: never begun again
    assert seen["end charge pay-1"] == 0
    assert seen["end record pay-1"] == 1
    told = model.told["pay-1"]  # the model reads that the outcome is unknown
    assert told["s-pay-1"] == NOT_RUN_AGAIN
    assert told["r-pay-1"] == "recorded pay-1"
    assert model.asked[("pay-1", 1)] == model.asked[("pay-1", 2)] == 1


# --- Postgres: two workers, one queue, one of them killed ------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _have_postgres() -> bool:
    if (PG_BIN / "initdb").exists():
        return True
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, timeout=600)
    done = subprocess.run(
        ["apt-get", "install", "-y", "-qq", "postgresql"],
        check=False, capture_output=True, timeout=900,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )  # fmt: skip
    return done.returncode == 0 and (PG_BIN / "initdb").exists()


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway Postgres cluster on a free loopback port; its database URL."""
    if not _have_postgres():
        reason = "Postgres is not installed and cannot be (needs root and apt-get)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    # Not under pytest's own folder: the postgres user must be able to reach it.
    home = Path(tempfile.mkdtemp(prefix="agentstream-pg-"))
    home.chmod(0o755)
    data, sockets = home / "data", home / "sock"
    sockets.mkdir()
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(home, "postgres")
        shutil.chown(sockets, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def pg(*command: str) -> None:
        subprocess.run([*as_postgres, *command], check=True, capture_output=True, timeout=120)

    pg(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
    pg(
        str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(home / "log"), "-w", "-o",
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c max_connections=300", "start",
    )  # fmt: skip
    try:
        pg(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "agents")
        yield f"postgresql://postgres@127.0.0.1:{port}/agents"
    finally:
        subprocess.run(
            [*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False, capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(home, ignore_errors=True)


RUNS = 50


async def test_postgres_two_workers_fifty_runs_one_killed(postgres: str, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    model = Model()
    started = time.monotonic()
    async with anyio.create_task_group() as server:
        port = await server.start(serve, ScriptedModel(model))
        # worker-a takes one run at a time and its slow tool takes 60 s: it is killed
        # inside that tool, never in the instant between a step's end and its record.
        # worker-b works the rest of the queue meanwhile.
        first = spawn(postgres, port, ledger, "worker-a", "serve", str(RUNS), sleep=60, at_once=1)
        await wait_for(lambda: "start slow" in " ".join(raw_lines(ledger)), 90, "work")
        second = spawn(postgres, port, ledger, "worker-b", "serve", "0", sleep=0.3)

        def ready_to_kill() -> bool:
            ended = sum(1 for x in lines(ledger) if x.startswith("end slow"))
            mine = [x for x in raw_lines(ledger) if x.endswith(" worker-a")]
            return ended >= 15 and bool(mine) and mine[-1].startswith("start slow")

        await wait_for(ready_to_kill, 120, "worker-a inside its slow tool, 15 runs done")
        kill(first)  # mid-way, with its run in flight
        restarted = spawn(postgres, port, ledger, "worker-a", "serve", "0", sleep=0.3)
        try:
            client = DBOSClient(system_database_url=postgres)

            def results() -> list[Any]:
                return [client.retrieve_workflow(f"run-{n}").get_result() for n in range(RUNS)]

            try:
                with anyio.fail_after(240):
                    outcomes = await anyio.to_thread.run_sync(results)
            finally:
                client.destroy()
        finally:
            kill(second)
            kill(restarted)
        server.cancel_scope.cancel()
    took = time.monotonic() - started
    assert [r.output for r in outcomes] == [f"done run-{n}" for n in range(RUNS)]
    seen = Counter(lines(ledger))
    twice = [line for line, count in seen.items() if line.startswith("end") and count > 1]
    assert twice == []  # no tool finished twice
    assert all(seen[f"end record run-{n}"] == 1 for n in range(RUNS))
    assert all(seen[f"end slow run-{n}"] == 1 for n in range(RUNS))
    # Only calls cut by the kill (first started on the killed worker, never finished
    # there) started again: a DBOS step that had not finished runs again, once.
    first_on: dict[str, str] = {}
    started_again: list[str] = []
    for line in raw_lines(ledger):
        if line.startswith("start slow"):
            call, executor = line.rsplit(" ", 1)
            if call in first_on:
                started_again.append(call)
            else:
                first_on[call] = executor
    assert all(first_on[call] == "worker-a" for call in started_again), started_again
    assert len(started_again) == len(set(started_again))
    again = {key: count for key, count in model.asked.items() if count > 1}
    assert again == {}  # no model step finished before the kill was asked again
    assert sorted(model.asked) == sorted((f"run-{n}", s) for n in range(RUNS) for s in (1, 2))
    print(f"\n{RUNS} runs on 2 workers, one killed mid-tool and restarted: {took:.1f}s")


async def test_the_postgres_store_example_keeps_a_session(postgres: str) -> None:
    from agentstream import Agent, Session
    from agentstream.testing import Reply, ScriptedModel
    from examples.postgres_store import PostgresStore

    store = PostgresStore(postgres)
    await store.setup()
    session = Session(store, "pg-session")
    model = ScriptedModel([Reply("first answer"), Reply("second answer")])
    agent = Agent(client=model.async_client(), model="m")
    await agent.run("one", session=session)
    await agent.run("two", session=session)
    assert [m["content"] for m in model.requests[1].messages] == ["one", "first answer", "two"]
    saved = await session.state()
    assert saved is not None
    assert saved.finished
    await session.clear()
    assert await store.load("pg-session") is None


async def test_the_postgres_store_example_resumes_a_doubled_approval_once(
    postgres: str, tmp_path: Path
) -> None:
    from agentstream import Session
    from examples.postgres_store import PostgresStore

    from .test_exactly_once import approve, paying_agent

    store = PostgresStore(postgres)
    await store.setup()
    for trial in range(20):
        ledger = tmp_path / f"ledger{trial}.txt"
        ledger.touch()
        agent, _ = paying_agent(ledger)
        session = Session(store, f"pg-race-{trial}")
        await agent.run("pay", session=session)
        outcomes: list[str] = []
        async with anyio.create_task_group() as group:
            group.start_soon(approve, agent, session, outcomes)
            group.start_soon(approve, agent, session, outcomes)
        assert sorted(outcomes) == ["Paid.", "refused"], trial
        assert ledger.read_text() == "paid 5\n", trial
    assert await store.purge(older_than=-1) >= 20
    assert await store.load("pg-race-0") is None
