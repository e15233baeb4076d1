"""Starting many idle runs at once, beside as many idle streams of the `openai` client.

The bench's server holds every answer back after its headers (a stall before the first
chunk), so each run or stream, once started, waits and holds its memory. For each
count, each reader:

- `sdk`: `chat.completions.create(stream=True)` of the `openai` client, then waiting
  for its first chunk;
- `agent`: `Agent.stream()`, waiting for its first event after `StepStarted`;
- `agent, N clients`: the same runs spread over several `openai` clients (several
  connection pools), as `agent.replace(client=...)` allows.

Started means the answer's headers have arrived (an httpx2 response hook counts them).
Each count of each reader starts in a fresh child process, against a server of its own
(memory a process has freed stays in its RSS and would flatter whatever runs next; a
server keeps a stalled answer's connection until the stall ends). Figures: wall and CPU seconds
until every one has started, and the growth of the child's resident memory per run
once they all wait. The connection pool of one client looks at each of its connections
whenever a request joins or leaves it, so starting N requests on one pool costs in
proportion to N squared; `pool_share` is the part of the start-up spent there, from a
profile (in a run of its own, as profiling slows it) of agent runs on one client.
"""

from __future__ import annotations

import cProfile
import dataclasses
import json
import os
import pstats
import sys
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from time import perf_counter
from typing import Any

import anyio
import httpx2
import openai

from .._agent import Agent
from ..testing._faults import FAULT_HEADER
from ._clients import _PROMPT, _rss, lookup, request_bodies
from ._serve import Workload, child_server, workload_policy

__all__ = ["SPREAD", "idle_side_by_side", "startup_curve"]

SPREAD = 10
"""Clients the spread runs share out among."""

_STALL = {FAULT_HEADER: "stall_after=0,stall_seconds=3600"}
_WAIT = 900.0  # seconds a count may take to start before the bench gives up on it


class _Started:
    """Counts the answers whose headers have arrived (an httpx2 response hook), and the
    runs that failed instead."""

    def __init__(self) -> None:
        self.count = 0
        self.failed = 0

    @property
    def settled(self) -> int:
        return self.count + self.failed

    def guard(
        self, reader: Callable[[int], Coroutine[Any, Any, None]]
    ) -> Callable[[int], Coroutine[Any, Any, None]]:
        """`reader`, counting its failure rather than ending every other run with it."""

        async def guarded(number: int) -> None:
            try:
                await reader(number)
            except Exception:
                self.failed += 1

        return guarded

    async def __call__(self, response: httpx2.Response) -> None:
        self.count += 1


def _client(base_url: str, started: _Started) -> openai.AsyncOpenAI:
    """An `openai` client whose pool may open a connection per waiting stream."""
    http = openai.DefaultAsyncHttpxClient(
        limits=httpx2.Limits(max_connections=None, max_keepalive_connections=100),
        # Thousands of connections at once overflow the listener's backlog: the kernel
        # retries the handshake seconds later, past the SDK's 5 s to connect.
        timeout=httpx2.Timeout(_WAIT),
        event_hooks={"response": [started]},
    )
    return openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, http_client=http)


def _idle_reader(
    kind: str, clients: list[openai.AsyncOpenAI], body: dict[str, Any]
) -> Callable[[int], Coroutine[Any, Any, None]]:
    """What one idle run (or stream) of `kind` does, given its number."""
    if kind == "sdk":
        client = clients[0]

        async def stream(number: int) -> None:
            answer = await client.chat.completions.create(**body, extra_headers=_STALL)
            async with answer:
                async for _ in answer:
                    pass

        return stream
    agents = [
        Agent(client=client, model="bench", tools=[lookup], extra_headers=_STALL)
        for client in clients
    ]

    async def run(number: int) -> None:
        async with agents[number % len(agents)].stream(_PROMPT) as events:
            async for _ in events:
                pass

    return run


async def _start(
    base_url: str, kind: str, count: int, body: dict[str, Any], profile: bool = False
) -> dict[str, Any]:
    """Start `count` idle readers of `kind`; their start-up's cost and memory."""
    started = _Started()
    clients = [_client(base_url, started) for _ in range(SPREAD if "clients" in kind else 1)]
    reader = started.guard(_idle_reader("sdk" if kind == "sdk" else "agent", clients, body))
    profiler = cProfile.Profile() if profile else None
    rss_before = _rss()
    try:
        async with anyio.create_task_group() as tasks:
            cpu, wall = time.process_time(), perf_counter()
            if profiler is not None:
                profiler.enable()
            for number in range(count):
                tasks.start_soon(reader, number)
            deadline = wall + _WAIT
            while started.settled < count and perf_counter() < deadline:
                await anyio.sleep(0.02)
            if profiler is not None:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, perf_counter() - wall
            await anyio.sleep(0.5)  # let memory settle
            rss = _rss() - rss_before
            tasks.cancel_scope.cancel()
    finally:
        for client in clients:
            await client.close()
    row: dict[str, Any] = {
        "reader": kind,
        "count": count,
        "started": started.count,
        "failed": started.failed,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "cpu_ms_per_run": 1000 * cpu / count,
        "rss_bytes_per_run": round(rss / count),
    }
    if profiler is not None:
        row["pool_share"] = _pool_share(profiler)
    return row


def _pool_share(profiler: cProfile.Profile) -> float:
    """The part of the profiled time spent assigning requests to pooled connections."""
    stats = pstats.Stats(profiler)
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    pool = sum(
        entry[3]  # cumulative time
        for (filename, _, name), entry in table.items()
        if name == "_assign_requests_to_connections"
        and filename.endswith(os.path.join("_async", "connection_pool.py"))
    )
    return pool / total if total else 0.0


async def _in_child(workload: Workload, *argv: str) -> dict[str, Any]:
    """Run `_child` with `argv` in a fresh process; its JSON answer."""
    command = [sys.executable, "-m", __name__, *argv]
    spec = json.dumps(dataclasses.asdict(workload)).encode()
    done = await anyio.run_process(command, input=spec, check=False)
    if done.returncode:
        tail = done.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(argv)} failed in its child process:\n{tail}")
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


async def startup_curve(
    workload: Workload, counts: list[int], profile_count: int, backend: str
) -> dict[str, Any]:
    """Start-up of idle runs and idle SDK streams at each count (see the module)."""
    rows = []
    for count in counts:
        for kind in ("sdk", "agent", f"agent, {SPREAD} clients"):
            rows.append(await _in_child(workload, "start", kind, str(count), backend))
    profiled = await _in_child(workload, "start", "agent", str(profile_count), backend, "profile")
    return {"spread_clients": SPREAD, "rows": rows, "profile": profiled}


async def idle_side_by_side(workload: Workload, count: int, backend: str) -> dict[str, Any]:
    """Bytes per idle run and per idle SDK stream, traced alike (tracemalloc)."""
    return await _in_child(workload, "idle", str(count), backend)


async def _hold(
    base_url: str, kind: str, count: int, body: dict[str, Any], trace: bool
) -> tuple[float, int]:
    """Start `count` idle readers of `kind` and let them wait: traced bytes per reader
    (with `trace`), and how many failed."""
    started = _Started()
    client = _client(base_url, started)
    reader = started.guard(_idle_reader(kind, [client], body))
    if trace:
        tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        async with anyio.create_task_group() as tasks:
            for number in range(count):
                tasks.start_soon(reader, number)
            deadline = perf_counter() + _WAIT
            while started.settled < count and perf_counter() < deadline:
                await anyio.sleep(0.02)
            await anyio.sleep(0.5)
            held = (tracemalloc.get_traced_memory()[0] - base) / count
            tasks.cancel_scope.cancel()
    finally:
        tracemalloc.stop()
        await client.close()
    return held, started.failed


async def _traced(base_url: str, count: int, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"count": count}
    for kind in ("sdk", "agent"):  # first without tracing: what is made once (caches,
        await _hold(base_url, kind, 10, body, trace=False)  # lazy imports) is not per run
    for kind in ("sdk", "agent"):
        held, failed = await _hold(base_url, kind, count, body, trace=True)
        result[f"{kind}_bytes"], result[f"{kind}_failed"] = held, failed
    result["agent_over_sdk"] = result["agent_bytes"] / result["sdk_bytes"]
    return result


def _child(argv: list[str]) -> None:
    """In a child process, with a server of its own: one measurement, printed as JSON.

    `start KIND COUNT BACKEND [profile]` or `idle COUNT BACKEND`; the workload comes as
    JSON on the standard input.
    """
    workload = Workload(**json.loads(sys.stdin.buffer.read()))
    backend = argv[-1] if argv[0] == "idle" else argv[3]
    body = anyio.run(request_bodies, workload_policy(workload), backend=backend)[0]
    with child_server(workload) as server:
        if argv[0] == "idle":
            answer = anyio.run(_traced, server.base_url, int(argv[1]), body, backend=backend)
        else:
            kind, count = argv[1:3]
            profile = argv[4:] == ["profile"]
            answer = anyio.run(
                _start, server.base_url, kind, int(count), body, profile, backend=backend
            )
    sys.stdout.write(json.dumps(answer))


if __name__ == "__main__":
    _child(sys.argv[1:])
