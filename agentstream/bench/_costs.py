"""What the options of a run cost per chunk: time limits and observers, on both wires.

Each reader makes the two requests of one agent run against the bench's child server,
run after run; the figure is this process's CPU time per chunk (or per Responses
event), which a loaded machine disturbs less than wall time. Readers:

- `bare`: the bare httpx2 loop of the e2e section (the floor);
- `agent`: `Agent.stream()` as in the e2e section;
- `timeouts`: the same with `Timeouts` set (far-off limits, so that none ends a run);
- `observers`: the same with one observer that does nothing.

Every agent has a client of its own (see `Clients`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import openai

from .._agent import Agent
from .._events import Event, ToolFinished, ToolStarted
from ..loop._timeouts import Timeouts
from ._clients import _PROMPT, Clients, lookup, open_clients
from ._responses import ResponsesClients, responses_bodies

if TYPE_CHECKING:
    from ..loop._run import AgentRun

__all__ = ["LIMITS", "cost_samples"]

LIMITS = Timeouts(first_chunk=60, idle=60, step=600, run=3600)
"""Limits that bound every wait of a run and end none."""


class _Quiet:
    """An observer that watches every run and does nothing: what observing costs."""

    def observe(self, run: AgentRun[Any]) -> _Quiet:
        return self

    def event(self, event: Event) -> None:
        pass

    @contextlib.contextmanager
    def tool_call(self, started: ToolStarted) -> Iterator[Callable[[ToolFinished], object]]:
        yield lambda finished: None

    def end(self, error: BaseException | None) -> None:
        pass


def _agents(base_url: str, api: str) -> dict[str, tuple[Agent[Any], openai.AsyncOpenAI]]:
    made = {}
    options: dict[str, dict[str, Any]] = {
        "agent": {},
        "timeouts": {"timeouts": LIMITS},
        "observers": {"observers": [_Quiet()]},
    }
    for kind, extra in options.items():
        client = openai.AsyncOpenAI(base_url=base_url, api_key="bench")
        agent = Agent(client=client, model="bench", tools=[lookup], api=api, **extra)  # type: ignore[arg-type]
        made[kind] = (agent, client)
    return made


def _agent_runner(agent: Agent[Any]) -> Callable[[], Awaitable[Any]]:
    async def run() -> None:
        async with agent.stream(_PROMPT) as events:
            async for _ in events:
                pass

    return run


async def cost_samples(base_url: str, policy: Any, runs: int, repetitions: int) -> dict[str, Any]:
    """CPU microseconds per chunk of each reader on each wire, one sample a repetition."""
    result: dict[str, Any] = {}
    for api in ("chat", "responses"):
        agents = _agents(base_url, api)
        closing: Clients | ResponsesClients
        if api == "chat":
            closing = await open_clients(base_url, policy)
            bare: Callable[[], Awaitable[Any]] = closing.bare_run
            per_run = (await closing.bare_run()).chunks
        else:
            closing = ResponsesClients(base_url, await responses_bodies(policy))
            bare = closing.bare_run
            per_run = await closing.bare_run()
        readers = {"bare": bare, **{kind: _agent_runner(a) for kind, (a, _) in agents.items()}}
        samples: dict[str, list[float]] = {kind: [] for kind in readers}
        try:
            for run in readers.values():
                await run()  # warm up: connections, imports, caches
            for _ in range(repetitions):
                for kind, run in readers.items():
                    started = time.process_time()
                    for _ in range(runs):
                        await run()
                    cpu = time.process_time() - started
                    samples[kind].append(1e6 * cpu / (runs * per_run))
        finally:
            await closing.aclose()
            for _, client in agents.values():
                await client.close()
        result[api] = {"chunks_per_run": per_run, "us_per_chunk": samples}
    return result
