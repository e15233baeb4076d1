"""A worker process of the DBOS tests: one app, one durable agent, started by the tests.

    python tests/dbos_app/worker.py DB_URL MODEL_PORT LEDGER EXECUTOR ACTION [ARGS...]

ACTION is `run WORKFLOW_ID` (start one run and wait for it), `recover` (launch, which
recovers this executor's pending runs, and wait for them), or `serve N` (a `Worker`:
register the queue, and with N > 0 enqueue runs `run-0` ... `run-N-1` first; then work
the queue, taking over dead workers' runs, until SIGTERM, which drains it, or SIGKILL).
EXECUTOR `-` makes a worker with a name of its own. Tools write to LEDGER: `start NAME
RUN` before their work, `end NAME RUN` after it. `TOOL_SLEEP` seconds of work per call
(default 0); with `LEDGER_TIMES` set, each line ends with ` @T`, T the time on the
machine's monotonic clock (the wall clock with `LEDGER_WALL` set). `STALE`, `GRACE`,
`BEAT`: the worker's seconds (default 3, 30, STALE/5); the slow tool of the runs in
`LONG_RUNS` (a,b,...) takes `LONG_SLEEP`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import openai
from dbos import DBOS

from agentstream import Agent, ToolContext, tool
from agentstream.dbos import DurableAgent, Worker

DB_URL, PORT, LEDGER, GIVEN, ACTION = sys.argv[1:6]
REST = sys.argv[6:]
worker = Worker(
    DB_URL,
    None if GIVEN == "-" else GIVEN,
    stale=float(os.environ.get("STALE", "3")),
    grace=float(os.environ.get("GRACE", "30")),
    beat=float(os.environ["BEAT"]) if os.environ.get("BEAT") else None,
)
LONG = set(filter(None, os.environ.get("LONG_RUNS", "").split(",")))
EXECUTOR = worker.name


def note(line: str) -> None:
    if os.environ.get("LEDGER_TIMES"):  # when, on the machine's monotonic clock
        at = time.time() if os.environ.get("LEDGER_WALL") else time.monotonic()
        line = f"{line} @{at:.6f}"
    with Path(LEDGER).open("a") as ledger:
        ledger.write(line + "\n")
        ledger.flush()
        os.fsync(ledger.fileno())


@tool(idempotent=True)  # cut by a kill, run again (the tests count the runs)
def record(topic: str, ctx: ToolContext) -> str:
    """Record a topic."""
    note(f"start record {topic} {EXECUTOR}")
    note(f"end record {topic} {EXECUTOR}")
    return f"recorded {topic}"


@tool(idempotent=True)
def slow(topic: str, ctx: ToolContext) -> str:
    """Slow work on a topic."""
    note(f"start slow {topic} {EXECUTOR}")
    long = topic in LONG  # these runs' slow tool takes LONG_SLEEP seconds
    time.sleep(float(os.environ.get("LONG_SLEEP" if long else "TOOL_SLEEP", "0")))
    note(f"end slow {topic} {EXECUTOR}")
    return f"worked on {topic}"


@tool
def charge(topic: str, ctx: ToolContext) -> str:
    """Charge for a topic (not idempotent: cut by a kill, it is not run again)."""
    note(f"start charge {topic} {EXECUTOR}")
    time.sleep(float(os.environ.get("TOOL_SLEEP", "0")))
    note(f"end charge {topic} {EXECUTOR}")
    return f"charged {topic}"


DBOS(
    config={
        "name": "agentstream-tests",
        "system_database_url": DB_URL,
        "application_version": "1",
        "executor_id": EXECUTOR,
    }
)
client = openai.AsyncOpenAI(api_key="k", base_url=f"http://127.0.0.1:{PORT}/v1", max_retries=0)
agent = Agent(client=client, model="m", tools=[record, slow, charge])
# Every run keeps its events; the `serve` workers fence their steps with their lease.
durable = DurableAgent(
    agent, name="tester", events_url=DB_URL, worker=worker if ACTION == "serve" else None
)


async def main() -> None:
    if ACTION == "serve":
        async with worker.running():
            concurrency = int(os.environ.get("WORKER_CONCURRENCY", "4"))
            queue = await DBOS.register_queue_async("agents", worker_concurrency=concurrency)
            for number in range(int(REST[0])):
                await durable.enqueue(queue, f"run-{number}", workflow_id=f"run-{number}")
            if int(REST[0]):
                note(f"enqueued {REST[0]} {EXECUTOR}")
            note(f"serving {EXECUTOR}")
            await worker.until_stopped()
            note(f"draining {EXECUTOR}")
        for name in worker.took_over:
            note(f"took-over {name} {EXECUTOR}")
        note(f"left {EXECUTOR}")
        # At once: a tool cut by the hand-off may still run in a thread; its run goes
        # on elsewhere (as `Worker.serve` says, the process ends when it returns).
        os._exit(0)
    DBOS.launch()
    if ACTION == "run":
        result = await durable.run(REST[0], workflow_id=REST[0])
        note(f"result {REST[0]} {result.output}")
    elif ACTION == "recover":
        while True:  # recovery runs in the background; the tests read the results
            await asyncio.sleep(1)


asyncio.run(main())
