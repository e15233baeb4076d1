"""A cost budget: the Python calls a run makes, counted by a profiler hook, never timed.

A fixed scripted workload runs through the real `openai` client and the real SSE bytes
of the scripted model, on each wire, with and without time limits. A hook counts each
Python frame entered or resumed on behalf of the consuming task (frames whose stack
holds `_consume`), leaving out the scripted model's own code (`agentstream.testing`,
which renders and paces the answer) and the event loop's. From three workloads come:

- per run: a tool step, then a 20-word answer;
- per step: that run less the answer alone (a request, its stream, a tool);
- per chunk: a 120-word answer less a 20-word one, over the 100 text chunks between.

Budgets are at or below the counts of the code of 6e6ddda for the same workload (see
`OLD`); the Responses API came later, so its budgets are today's counts. Timings stay
in `python -m agentstream bench`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

import pytest

import agentstream.testing
from agentstream import Agent, Timeouts, tool
from agentstream.testing import Reply, ScriptedModel, ToolCall

pytestmark = pytest.mark.anyio

_SCAFFOLDING = os.path.dirname(agentstream.testing.__file__) + os.sep
_REPEATS = 5
"""Runs of each workload, after one that warms caches; the fewest calls count.

trio runs ready tasks in a random order, so the consumer finds a tool's result ready
or waits for it (some 50 to 90 calls more); asyncio's counts do not vary.
"""


@dataclass(frozen=True, slots=True)
class Costs:
    """Python calls per run, per step and per text chunk."""

    run: int
    step: int
    chunk: float

    def over(self, budget: Costs) -> list[str]:
        """What exceeds `budget`, with both figures."""
        return [
            f"{name}: {getattr(self, name)} calls > budget {getattr(budget, name)}"
            for name in ("run", "step", "chunk")
            if getattr(self, name) > getattr(budget, name)
        ]


class CallCounter:
    """A `sys.setprofile` hook counting the calls made on behalf of one coroutine."""

    def __init__(self, root: CodeType, left_out: str) -> None:
        self.root = root
        self.left_out = left_out
        self.calls = 0

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":  # a Python frame entered, or a generator resumed
            return
        seen: FrameType | None = frame
        rooted = False
        while seen is not None:
            code = seen.f_code
            if code.co_filename.startswith(self.left_out):
                return
            if code is self.root:
                rooted = True
            seen = seen.f_back
        if rooted:
            self.calls += 1


@tool
async def act(n: int) -> str:
    """Act on n."""
    return f"done {n}"


async def _consume(agent: Agent) -> None:
    async with agent.stream("go") as run:
        async for _ in run:
            pass


def _answer(words: int) -> Reply:
    return Reply(" ".join(f"w{i}" for i in range(words)))


async def calls_of(script: list[Reply], api: str, timeouts: Timeouts | None) -> int:
    """The fewest calls of `_REPEATS` runs of `script`, after a first that warms caches."""
    counts = []
    options: dict[str, Any] = {"api": api} if api != "chat" else {}
    for _ in range(_REPEATS + 1):
        model = ScriptedModel(script)
        client = model.async_client()
        agent = Agent(client=client, model="m", tools=[act], timeouts=timeouts, **options)
        counter = CallCounter(_consume.__code__, _SCAFFOLDING)
        before = sys.getprofile()
        sys.setprofile(counter)
        try:
            await _consume(agent)
        finally:
            sys.setprofile(before)
        await client.close()
        counts.append(counter.calls)
    return min(counts[1:])


async def measure(api: str, timeouts: Timeouts | None) -> Costs:
    """The costs of the fixed workload on `api`."""
    tool_step = Reply(tool_calls=[ToolCall("act", {"n": 1})])
    run = await calls_of([tool_step, _answer(20)], api, timeouts)
    short = await calls_of([_answer(20)], api, timeouts)
    long = await calls_of([_answer(120)], api, timeouts)
    return Costs(run=run, step=run - short, chunk=(long - short) / 100)


# Far-off limits: they bound every wait but never end one.
LIMITS = Timeouts(first_chunk=60, idle=60, step=600, run=3600)

OLD = {
    ("chat", "asyncio", False): Costs(run=2410, step=1038, chunk=20.0),
    ("chat", "asyncio", True): Costs(run=3506, step=1288, chunk=55.0),
    ("chat", "trio", False): Costs(run=2537, step=1076, chunk=20.0),
    ("chat", "trio", True): Costs(run=4378, step=1494, chunk=79.0),
}
"""The counts of the code of 6e6ddda (`git worktree add /tmp/old 6e6ddda`, this file
run there by pytest), Python 3.11, 2026-12-05. Keyed by (wire, backend, time limits).

Counted inside pytest's anyio runner: on trio a cancel scope costs more under more
scopes, so the same code counts a few calls more per chunk there than in a script."""

_SLACK = 50
"""Calls allowed above trio's fewest, per run and per step (see `_REPEATS`)."""

BUDGETS = {
    ("chat", "asyncio", False): Costs(run=2162, step=978, chunk=11.0),
    ("chat", "asyncio", True): Costs(run=2291, step=1042, chunk=11.0),
    ("chat", "trio", False): Costs(run=2286 + _SLACK, step=1013 + _SLACK, chunk=11.0),
    ("chat", "trio", True): Costs(run=2518 + _SLACK, step=1128 + _SLACK, chunk=11.0),
    ("responses", "asyncio", False): Costs(run=2239, step=1015, chunk=9.0),
    ("responses", "asyncio", True): Costs(run=2368, step=1079, chunk=9.0),
    ("responses", "trio", False): Costs(run=2313 + _SLACK, step=1025 + _SLACK, chunk=9.0),
    ("responses", "trio", True): Costs(run=2545 + _SLACK, step=1140 + _SLACK, chunk=9.0),
}
"""Today's counts: a change that adds calls fails here; one that saves some lowers them.

Counted on 2026-12-06, after a step's tools were relayed without a generator per
layer (the runner hands over lists of events, from an inbox of its own rather than a
memory object stream), its calls sorted by a coroutine, a response's usage read in
one loop, and a body without content encoding read straight from the response's byte
stream (no decoder nor chunker pass: 5 calls less a chunk). Every budget is at or
below `OLD`: per chunk (11 calls against 20 on Chat Completions), and per run and per
step, with time limits or without (they cost a cancel scope per request, nothing per
chunk: the stream keeps them through the HTTP read timeout, see
`agentstream/wire/_bounds.py`). `test_at_or_below_6e6ddda` holds that.
"""


@pytest.mark.parametrize("api", ["chat", "responses"])
@pytest.mark.parametrize("limits", [False, True], ids=["no-timeouts", "timeouts"])
async def test_calls_stay_within_budget(api: str, limits: bool, anyio_backend_name: str) -> None:
    costs = await measure(api, LIMITS if limits else None)
    budget = BUDGETS[(api, anyio_backend_name, limits)]
    over = costs.over(budget)
    assert not over, f"{api}, {anyio_backend_name}, timeouts={limits}: " + "; ".join(over)


@pytest.mark.parametrize("limits", [False, True], ids=["no-timeouts", "timeouts"])
async def test_at_or_below_6e6ddda(limits: bool, anyio_backend_name: str) -> None:
    costs = await measure("chat", LIMITS if limits else None)
    over = costs.over(OLD[("chat", anyio_backend_name, limits)])
    assert not over, "; ".join(over)


async def test_the_count_sees_work_per_chunk() -> None:
    # `idle` without `first_chunk` cannot be the HTTP read timeout (it would bound the
    # first wait too), so each wait for a chunk has a cancel scope: the count must see
    # it, or a budget could never fail.
    plain = await measure("chat", None)
    bounded = await measure("chat", Timeouts(idle=60, step=600))
    assert bounded.chunk > plain.chunk + 5
    assert plain.chunk > 5


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param(Timeouts(first_chunk=60), id="first-chunk-alone"),
        pytest.param(Timeouts(first_chunk=30, idle=60, step=600), id="first-chunk-below-idle"),
    ],
)
async def test_limits_the_read_timeout_can_keep_cost_nothing_per_chunk(limits: Timeouts) -> None:
    plain = await measure("chat", None)
    bounded = await measure("chat", limits)
    assert bounded.chunk == plain.chunk, (bounded, plain)
