"""Tools from an MCP server: start it over stdio, offer its tools, watch the calls.

Run it with `python examples/mcp_tools.py` (needs `pip install 'agentstream[mcp]'`).
It starts `examples/mcp_weather_server.py` as a subprocess and talks MCP to it over
stdin and stdout. Offline unless OPENAI_API_KEY or OPENAI_BASE_URL is set (then
OPENAI_MODEL picks the model, gpt-4o-mini by default).

The server is a live toolset: the agent offers whatever tools it has at each step,
named with the prefix (`weather_get_weather`); leaving the `async with` block stops it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from openai import AsyncOpenAI

from agentstream import Agent, RunFinished, RunStarted, ToolFinished, ToolStarted
from agentstream.mcp import MCPServerStdio
from agentstream.testing import offline_model

SERVER = Path(__file__).with_name("mcp_weather_server.py")
PROMPT = "What's the weather in Paris and Tokyo?"


def make_client() -> AsyncOpenAI:
    """A real provider when one is configured, else the offline model."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        return AsyncOpenAI(api_key=os.environ.get("OPENAI_API_KEY") or "unused")
    return offline_model().async_client()


def weather_server() -> MCPServerStdio:
    return MCPServerStdio(sys.executable, [str(SERVER)], prefix="weather")


async def main(prompt: str = PROMPT) -> None:
    async with make_client() as client, weather_server() as weather:
        model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
        agent = Agent(client=client, model=model, tools=[weather])
        async with agent.stream(prompt) as run:
            async for event in run:
                match event:
                    case RunStarted(tools=tools):
                        print(f"tools: {', '.join(tools)}")
                    case ToolStarted(name=name, arguments=arguments):
                        print(f"-> {name}({arguments})")
                    case ToolFinished(name=name, output=output):
                        print(f"<- {name}: {output}")
                    case RunFinished(result=result):
                        print(result.output)


if __name__ == "__main__":
    asyncio.run(main())
