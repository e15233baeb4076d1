"""Benchmark clients: the same two requests read three ways, and the agent's tools.

- `bare`: httpx2 (the HTTP library under the SDK), the body split at blank lines,
  `json.loads` per event: the floor for reading these streams in Python.
- `sdk`: the `openai` client with `stream=True`, iterating its typed chunks.
- `post`: the `openai` client's public `post` asked for the raw response, read as
  `bare` reads it: the floor for any reader that sends its requests through the SDK
  (which is how the agent sends them), so the two tell the SDK's cost from the agent's.
- `agent`: `agentstream.Agent.stream()` through the public API, tools and all.

Each run makes the two requests an agent run makes (the tool calls, then the answer);
`bare` and `sdk` send the very bodies the agent sent, so all three read the same
bytes. "First token" is the first chunk that carries text or a tool call.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import anyio
import httpx2
import openai

from .._agent import Agent
from .._events import ReasoningDelta, TextDelta, ToolCallStarted, ToolFinished, ToolStarted
from ..testing import Reply, ScriptedModel, ToolCall
from ..testing._faults import FAULT_HEADER
from ..tools._tool import Tool, tool

__all__ = [
    "Clients",
    "RunTiming",
    "idle_memory",
    "open_clients",
    "parallel_tools",
    "request_bodies",
]

_FIRST = (TextDelta, ReasoningDelta, ToolCallStarted)
_PROMPT = "Look up the items and summarise them."
_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)  # the SDK's


@tool
async def lookup(query: str, notes: str) -> str:
    """Look up an item.

    Args:
        query: What to look up.
        notes: Free text about it.
    """
    return f"{query}: found ({len(notes)} characters of notes)"


@dataclass(frozen=True, slots=True)
class RunTiming:
    """One run: chunks read, seconds to its first token, seconds in all."""

    chunks: int
    first_token: float
    seconds: float


class Clients:
    """The three readers, over one server, with the request bodies they send."""

    def __init__(self, base_url: str, bodies: Sequence[dict[str, Any]]) -> None:
        self.url = base_url + "/chat/completions"
        self.bodies = list(bodies)
        self.http = httpx2.AsyncClient(limits=_LIMITS, timeout=600)
        self.openai = openai.AsyncOpenAI(base_url=base_url, api_key="bench")
        # Each reader that sends through the SDK has a client (and a connection pool)
        # of its own: the SDK's stream closes its response at `[DONE]` without reading
        # the body's end, so the connection it used is not reused, and the next request
        # on the same pool opens a new one.
        self.post_client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
        self.agent_client = openai.AsyncOpenAI(base_url=base_url, api_key="bench")
        self.agent = Agent(client=self.agent_client, model="bench", tools=[lookup])

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.openai.close()
        await self.post_client.close()
        await self.agent_client.close()

    def runner(self, kind: str) -> Callable[[], Awaitable[RunTiming]]:
        runners = {
            "bare": self.bare_run,
            "sdk": self.sdk_run,
            "post": self.post_run,
            "agent": self.agent_run,
        }
        return runners[kind]

    async def bare_run(self) -> RunTiming:
        started = perf_counter()
        first = 0.0
        chunks = 0
        headers = {"authorization": "Bearer bench"}
        for body in self.bodies:
            request = self.http.build_request("POST", self.url, json=body, headers=headers)
            response = await self.http.send(request, stream=True)
            chunks, first = await _read(response, started, chunks, first)
        return RunTiming(chunks, first, perf_counter() - started)

    async def post_run(self) -> RunTiming:
        started = perf_counter()
        first = 0.0
        chunks = 0
        options: Any = {"security": {"bearer_auth": True}}
        for body in self.bodies:
            response = await self.post_client.post(
                "/chat/completions",
                body=body,
                options=options,
                cast_to=httpx2.Response,
                stream=True,
                stream_cls=None,
            )
            chunks, first = await _read(response, started, chunks, first)
        return RunTiming(chunks, first, perf_counter() - started)

    async def sdk_run(self) -> RunTiming:
        started = perf_counter()
        first = 0.0
        chunks = 0
        for body in self.bodies:
            stream = await self.openai.chat.completions.create(**body)
            async with stream:
                async for chunk in stream:
                    chunks += 1
                    if not first and chunk.choices:
                        delta = chunk.choices[0].delta
                        if delta.content or delta.tool_calls:
                            first = perf_counter() - started
        return RunTiming(chunks, first, perf_counter() - started)

    async def agent_run(self) -> RunTiming:
        started = perf_counter()
        first = 0.0
        async with self.agent.stream(_PROMPT) as run:
            async for event in run:
                if not first and isinstance(event, _FIRST):
                    first = perf_counter() - started
        return RunTiming(0, first, perf_counter() - started)


async def _read(
    response: httpx2.Response, started: float, chunks: int, first: float
) -> tuple[int, float]:
    """Read a stream as the bare loop does: the chunk count and first token so far."""
    try:
        buffer = b""
        async for raw in response.aiter_bytes():
            buffer = buffer + raw if buffer else raw
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                data = event[6:]
                if data == b"[DONE]":
                    break
                chunk = json.loads(data)
                chunks += 1
                if not first and _has_token(chunk):
                    first = perf_counter() - started
    finally:
        await response.aclose()
    return chunks, first


def _has_token(chunk: dict[str, Any]) -> bool:
    choices = chunk.get("choices")
    if not choices:
        return False
    delta = choices[0].get("delta") or {}
    return bool(delta.get("content") or delta.get("tool_calls"))


async def request_bodies(policy: Any) -> list[dict[str, Any]]:
    """The request bodies one agent run sends, recorded from an in-process model."""
    model = ScriptedModel(policy)
    async with model.async_client() as client:
        await Agent(client=client, model="bench", tools=[lookup]).run(_PROMPT)
    return [dict(request.body) for request in model.requests]


async def open_clients(base_url: str, policy: Any) -> Clients:
    return Clients(base_url, await request_bodies(policy))


async def idle_memory(clients: Clients, count: int) -> tuple[float, float]:
    """Bytes per agent run waiting for its first chunk: (tracemalloc, VmRSS delta).

    The server holds every answer back (a stall before the first chunk), `count` runs
    start, and memory is read once it stops growing; then the runs are cancelled.
    """
    stalled = Agent(
        client=clients.openai,
        model="bench",
        tools=[lookup],
        extra_headers={FAULT_HEADER: "stall_after=0,stall_seconds=120"},
    )

    async def idle() -> None:
        async with stalled.stream(_PROMPT) as run:
            async for _ in run:
                pass

    tracemalloc.start()
    try:
        base_traced = tracemalloc.get_traced_memory()[0]
        base_rss = _rss()
        async with anyio.create_task_group() as tasks:
            for _ in range(count):
                tasks.start_soon(idle)
            traced, rss = await _settled(base_traced, base_rss)
            tasks.cancel_scope.cancel()
    finally:
        tracemalloc.stop()
    return traced / count, rss / count


async def _settled(base_traced: int, base_rss: int) -> tuple[int, int]:
    """Memory growth once two readings 0.2 s apart agree within 1% (at most 30 s)."""
    last = -1
    deadline = time.monotonic() + 30
    while True:
        await anyio.sleep(0.2)
        now = tracemalloc.get_traced_memory()[0] - base_traced
        if abs(now - last) <= 0.01 * max(now, 1) or time.monotonic() > deadline:
            return now, _rss() - base_rss
        last = now


def _rss() -> int:
    """This process's resident set size in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


async def _sleeper(arguments: dict[str, Any]) -> str:
    await anyio.sleep(arguments["seconds"])
    return "done"


def _sync_sleeper(arguments: dict[str, Any]) -> str:
    time.sleep(arguments["seconds"])
    return "done"


_WAIT_SCHEMA = {
    "type": "object",
    "properties": {"seconds": {"type": "number"}},
    "required": ["seconds"],
}


async def parallel_tools(durations: Sequence[float], *, threads: bool) -> float:
    """Seconds from the first tool's start to the last one's end, calls in parallel.

    The tools wait on I/O: `anyio.sleep` in async tools, `time.sleep` in sync ones
    (which run in worker threads).
    """
    calls = [ToolCall("wait_io", {"seconds": d}, id=f"call_{i}") for i, d in enumerate(durations)]
    model = ScriptedModel([Reply(tool_calls=calls), Reply("done")])
    wait = Tool.from_schema("wait_io", _WAIT_SCHEMA, _sync_sleeper if threads else _sleeper)
    first: float | None = None
    last = 0.0
    async with model.async_client() as client:
        agent = Agent(client=client, model="bench", tools=[wait])
        async with agent.stream("wait") as run:
            async for event in run:
                if isinstance(event, ToolStarted) and first is None:
                    first = perf_counter()
                elif isinstance(event, ToolFinished):
                    last = perf_counter()
    assert first is not None
    return last - first
