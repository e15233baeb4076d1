"""Tool calls the model makes together run together: wall time is the slowest, not the sum.

Run it with `python examples/parallel_tools.py`. Offline unless OPENAI_API_KEY or
OPENAI_BASE_URL is set (then OPENAI_MODEL picks the model, gpt-4o-mini by default).
Each tool stands in for a slow API (`await anyio.sleep(...)`). The async tools the model
calls in one step run concurrently in the run's task group: every start is printed
before any finish, and the step's wall time is the slowest tool's, not the sum.
"""

from __future__ import annotations

import asyncio
import os
from time import perf_counter

import anyio
from openai import AsyncOpenAI

from agentstream import Agent, RunFinished, ToolFinished, ToolStarted, tool
from agentstream.testing import offline_model

PROMPT = "What's the weather, the local time and a good hotel in Paris?"
LATENCY = {"get_weather": 0.5, "get_local_time": 0.2, "find_hotel": 1.0}
"""Seconds each tool's (pretend) service takes to answer."""


@tool
async def get_weather(location: str) -> str:
    """Get the current weather in a city.

    Args:
        location: The city, e.g. "Paris".
    """
    await anyio.sleep(LATENCY["get_weather"])
    return f"Sunny and 21 °C in {location}"


@tool
async def get_local_time(location: str) -> str:
    """Get the local time in a city.

    Args:
        location: The city, e.g. "Paris".
    """
    await anyio.sleep(LATENCY["get_local_time"])
    return f"It is 14:05 in {location}"


@tool
async def find_hotel(location: str) -> str:
    """Find a well-reviewed hotel in a city.

    Args:
        location: The city, e.g. "Paris".
    """
    await anyio.sleep(LATENCY["find_hotel"])
    return f"Hôtel du Nord, {location}: 4.6 stars"


def make_client() -> AsyncOpenAI:
    """A real provider when one is configured, else the offline model."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        return AsyncOpenAI(api_key=os.environ.get("OPENAI_API_KEY") or "unused")
    return offline_model().async_client()


def build_agent(client: AsyncOpenAI) -> Agent:
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
    return Agent(client=client, model=model, tools=[get_weather, get_local_time, find_hotel])


async def main() -> None:
    began = perf_counter()
    busy = 0.0  # the tools' durations, summed
    async with make_client() as client, build_agent(client).stream(PROMPT) as run:
        async for event in run:
            match event:
                case ToolStarted(name=name, arguments=arguments):
                    print(f"{perf_counter() - began:5.2f} s  start  {name}({arguments})")
                case ToolFinished(name=name, output=output, duration=duration):
                    busy += duration
                    print(f"{perf_counter() - began:5.2f} s  finish {name}: {output}")
                case RunFinished(result=result):
                    wall = sum(step.tool_time for step in result.steps)
                    print(f"tools: {busy:.2f} s of work in {wall:.2f} s of wall time")
                    print(result.output)


if __name__ == "__main__":
    asyncio.run(main())
