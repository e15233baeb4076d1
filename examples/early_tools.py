"""Early tool starts that pay: a slow lookup starts while the model still writes a long call.

Run it with `python examples/early_tools.py` (offline, about 8 s). The scripted model
answers like a real one that plans ahead: it first calls `search_fares` (a slow lookup,
1.5 s), then streams a long second call, `save_itinerary`, whose ~1,600-character text
takes about 4 s to arrive at 120 chunks a second. Without early starts both tools wait
for the whole response; with `early_tools=True` the lookup starts the moment its own
call is complete, about 4 s earlier, and is done before the response ends. The run goes
once each way and prints when each tool started, measured from the request.
`--tps N` and `--ttft S` change the model's pace.
"""

from __future__ import annotations

import argparse
import asyncio
from time import perf_counter

import anyio

from agentstream import (
    Agent,
    Event,
    RunFinished,
    ToolCallDelta,
    ToolContext,
    ToolStarted,
    tool,
)
from agentstream.testing import Reply, ScriptedModel, ToolCall

LOOKUP_SECONDS = 1.5


@tool(early=True, idempotent=True)
async def search_fares(origin: str, destination: str, ctx: ToolContext) -> str:
    """Search the fares between two cities (read-only: safe to start early).

    Args:
        origin: Where the trip starts, e.g. "Oslo".
        destination: Where it goes, e.g. "Rome".
    """
    for n, airline in enumerate(("Aurora", "Cobalt", "Estrela")):
        ctx.progress(n / 3, f"asking {airline}")
        await anyio.sleep(LOOKUP_SECONDS / 3)
    return f"{origin} to {destination}: Aurora 120 EUR, Cobalt 135 EUR, Estrela 151 EUR"


@tool
async def save_itinerary(text: str) -> str:
    """Save the itinerary the model wrote for the user.

    Args:
        text: The itinerary, in Markdown.
    """
    return f"saved {len(text)} characters"


ITINERARY = "\n".join(
    f"- Day {day}: a morning walk, lunch near the centre, a museum in the afternoon, "
    f"and dinner in a quiet trattoria away from the crowds."
    for day in range(1, 13)
)


def scripted_model(ttft: float, tps: float) -> ScriptedModel:
    """One response with the lookup first and a long call after it, then the answer."""
    calls = [
        ToolCall("search_fares", {"origin": "Oslo", "destination": "Rome"}),
        ToolCall("save_itinerary", {"text": ITINERARY}),
    ]
    answer = Reply("Fares from 120 EUR (Aurora); your 12-day itinerary is saved.")
    return ScriptedModel([Reply(tool_calls=calls), answer], ttft=ttft, tokens_per_second=tps)


async def run_once(early: bool, ttft: float, tps: float) -> list[tuple[float, Event]]:
    """Every event of one run, with its time from the start of the run."""
    model = scripted_model(ttft, tps)
    agent = Agent(
        client=model.async_client,
        model="scripted",
        tools=[search_fares, save_itinerary],
        early_tools=early,
    )
    began = perf_counter()
    seen: list[tuple[float, Event]] = []
    async with agent.stream("Plan 12 days in Rome from Oslo and find the fares") as run:
        async for event in run:
            seen.append((perf_counter() - began, event))
    return seen


def summary(seen: list[tuple[float, Event]]) -> dict[str, float]:
    """When the lookup started, when the long call's last piece came, when the run ended."""
    started = next(t for t, e in seen if isinstance(e, ToolStarted) and e.name == "search_fares")
    last_piece = max(t for t, e in seen if isinstance(e, ToolCallDelta))
    finished = next(t for t, e in seen if isinstance(e, RunFinished))
    return {"lookup started": started, "last piece": last_piece, "run finished": finished}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ttft", type=float, default=0.35)
    parser.add_argument("--tps", type=float, default=120.0)
    args = parser.parse_args()
    for early in (False, True):
        times = summary(await run_once(early, args.ttft, args.tps))
        line = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in times.items())
        print(f"early_tools={early!s:5}  {line}")


if __name__ == "__main__":
    asyncio.run(main())
