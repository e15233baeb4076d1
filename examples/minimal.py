"""The minimal agent: one custom tool, one question, the answer printed.

Run it with `python examples/minimal.py`. With neither OPENAI_API_KEY nor OPENAI_BASE_URL
set it talks to agentstream's offline model, so it needs no key and no network; set them
to use a real provider (OPENAI_MODEL picks the model, gpt-4o-mini by default).
"""

from __future__ import annotations

import asyncio
import os

from openai import AsyncOpenAI

from agentstream import Agent, tool
from agentstream.testing import offline_model


@tool
def get_weather(location: str) -> str:
    """Get the current weather in a city.

    Args:
        location: The city, e.g. "Paris".
    """
    return f"Sunny and 21 °C in {location}"


def make_client() -> AsyncOpenAI:
    """A real provider when one is configured, else the offline model."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        # A local server behind OPENAI_BASE_URL may need no key, but the SDK wants one.
        return AsyncOpenAI(api_key=os.environ.get("OPENAI_API_KEY") or "unused")
    return offline_model().async_client()


def build_agent(client: AsyncOpenAI) -> Agent:
    return Agent(
        client=client,
        model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
        tools=[get_weather],
    )


async def main() -> None:
    async with make_client() as client:
        result = await build_agent(client).run("What's the weather in Paris and Tokyo?")
    print(result.output)


if __name__ == "__main__":
    asyncio.run(main())
