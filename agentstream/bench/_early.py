"""The early-starts section: one paced response with four calls, early starts off and on.

The scripted model streams, at a steady pace, four tool calls one after another and
then some text. The first call goes to a slow tool (it takes about as long as the whole
stream), the other three to fast ones. Each run records, on the consumer's clock, when
each call's last argument piece arrived, when the stream moved past it (so that it was
known final), when each tool started and ended; a run without early starts and one
with them alternate, so that a slow moment of a shared machine falls on both alike.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from .. import Agent, StepStarted, TextDelta, ToolCallDelta, ToolCallStarted, tool
from ..testing import Reply, ScriptedModel

__all__ = ["EarlyScenario", "early_section"]


@dataclass(frozen=True, slots=True)
class EarlyScenario:
    """The shape of the measured response."""

    calls: int = 4
    argument_size: int = 48
    piece_size: int = 4
    trailing_words: int = 20
    tokens_per_second: float = 500.0
    """Chunks per second the model streams (one chunk a token)."""
    slow_share: float = 1.0
    """The slow tool's time as a share of the stream's duration."""
    fast_seconds: float = 0.005

    @property
    def chunks(self) -> int:
        pieces = -(-self.argument_size // self.piece_size)
        return 1 + self.calls * (1 + pieces) + self.trailing_words + 1

    @property
    def slow_seconds(self) -> float:
        """The slow tool's time if the stream kept its nominal pace."""
        return self.slow_share * self.chunks / self.tokens_per_second


@dataclass(slots=True)
class _Clock:
    """What one run saw, in seconds since its request."""

    request: float = 0.0
    last_piece: dict[int, float] = field(default_factory=dict)
    final: dict[int, float] = field(default_factory=dict)
    started: dict[int, float] = field(default_factory=dict)
    ended: dict[int, float] = field(default_factory=dict)
    text_end: float = 0.0


def _chunks(scenario: EarlyScenario) -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {"id": "bench", "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}

    out = [chunk({"role": "assistant", "content": None})]
    for index in range(scenario.calls):
        name = "slow_search" if index == 0 else "fast_lookup"
        padding = "x" * max(scenario.argument_size - 24, 1)
        arguments = json.dumps({"n": index, "q": padding})
        header = {"index": index, "id": f"call_{index}", "type": "function"}
        out.append(chunk({"tool_calls": [{**header, "function": {"name": name, "arguments": ""}}]}))
        for start in range(0, len(arguments), scenario.piece_size):
            piece = arguments[start : start + scenario.piece_size]
            out.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    out += [chunk({"content": " word"}) for _ in range(scenario.trailing_words)]
    out.append(chunk({}, "tool_calls"))
    return out


async def _one_run(scenario: EarlyScenario, early: bool, slow_seconds: float) -> _Clock:
    import anyio

    clock = _Clock()

    async def work(n: int, seconds: float) -> str:
        clock.started[n] = perf_counter()
        await anyio.sleep(seconds)
        clock.ended[n] = perf_counter()
        return "ok"

    @tool(early=True)
    async def slow_search(n: int, q: str) -> str:
        """Search slowly."""
        return await work(n, slow_seconds)

    @tool(early=True)
    async def fast_lookup(n: int, q: str) -> str:
        """Look up quickly."""
        return await work(n, scenario.fast_seconds)

    model = ScriptedModel(
        [Reply(chunks=_chunks(scenario)), Reply("done")],
        tokens_per_second=scenario.tokens_per_second,
    )
    async with model.async_client() as client:
        agent = Agent(client=client, model="m", tools=[slow_search, fast_lookup], early_tools=early)
        async with agent.stream("go") as run:
            passed = 0  # calls the stream has moved past
            async for event in run:
                now = perf_counter()
                match event:
                    case StepStarted(step=1):
                        clock.request = now
                    case ToolCallDelta(step=1, index=index):
                        clock.last_piece[index] = now
                    case ToolCallStarted(step=1, index=index) if index > passed:
                        clock.final[passed], passed = now, index
                    case TextDelta(step=1):
                        clock.final.setdefault(passed, now)
                        clock.text_end = now
    return clock


def _summary(clocks: Sequence[_Clock], calls: int) -> dict[str, Any]:
    def median(values: list[float]) -> float:
        return 1000 * statistics.median(values)

    rows = []
    for n in range(calls):
        rows.append(
            {
                "call": n,
                "start_lag_from_last_byte_ms": median(
                    [c.started[n] - c.last_piece[n] for c in clocks]
                ),
                "start_lag_from_final_ms": median([c.started[n] - c.final[n] for c in clocks]),
                "result_after_request_ms": median([c.ended[n] - c.request for c in clocks]),
            }
        )
    walls = [max(c.ended.values()) - c.request for c in clocks]
    floors = [
        max(c.last_piece[n] + (c.ended[n] - c.started[n]) for n in range(calls)) - c.request
        for c in clocks
    ]
    lags = [c.started[n] - c.final[n] for c in clocks for n in range(calls)]
    return {
        "calls": rows,
        "step_wall_ms": median(walls),
        "floor_ms": median(floors),
        "over_floor_ms": median([w - f for w, f in zip(walls, floors, strict=True)]),
        "start_lag_from_final_median_ms": median(lags),
    }


async def early_section(repetitions: int, scenario: EarlyScenario | None = None) -> dict[str, Any]:
    """Both modes, alternating; medians over `repetitions` runs each."""
    scenario = scenario or EarlyScenario()
    # Warm up (imports, caches, the first connection) and time the stream as this
    # machine paces it: the slow tool takes that long.
    slow = scenario.slow_seconds
    for early in (False, True):
        warm = await _one_run(scenario, early, slow)
    slow = scenario.slow_share * (warm.text_end - warm.request)
    clocks: dict[bool, list[_Clock]] = {False: [], True: []}
    for _ in range(repetitions):
        for early in (False, True):
            clocks[early].append(await _one_run(scenario, early, slow))
    off = _summary(clocks[False], scenario.calls)
    on = _summary(clocks[True], scenario.calls)
    return {
        "scenario": {
            "calls": scenario.calls,
            "chunks": scenario.chunks,
            "tokens_per_second": scenario.tokens_per_second,
            "slow_tool_ms": 1000 * slow,
            "fast_tool_ms": 1000 * scenario.fast_seconds,
            "runs_per_mode": repetitions,
        },
        "off": off,
        "on": on,
        "wall_reduction": 1 - on["step_wall_ms"] / off["step_wall_ms"],
    }
