"""Serving the chat page and its API with uvicorn, and the page's demo tools.

`python -m agentstream web` (in `agentstream.cli`) builds the agent and calls `serve`.
"""

from __future__ import annotations

import zlib

import anyio

from agentstream import Agent, Tool, tool

from ._app import create_app

__all__ = ["demo_tools", "serve"]


@tool
async def get_weather(location: str) -> str:
    """Get the current weather in a city.

    Args:
        location: The city, e.g. "Paris".
    """
    seed = zlib.crc32(location.strip().lower().encode())
    await anyio.sleep(0.3 + (seed % 7) / 10)  # a backend's latency, so the timeline shows it
    conditions = ("sunny", "cloudy", "light rain", "windy", "clear")[seed % 5]
    return f"{conditions}, {8 + seed % 20} °C in {location}"


@tool
async def wait_seconds(seconds: float) -> str:
    """Wait a number of seconds, like a slow job (try the stop button on it).

    Args:
        seconds: How long to wait, at most 600.
    """
    await anyio.sleep(min(max(seconds, 0.0), 600.0))
    return f"waited {seconds:g} seconds"


def demo_tools() -> list[Tool]:
    """The tools the page offers by default: weather (with latency) and a slow job."""
    return [get_weather, wait_seconds]


def serve(
    agent: Agent, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None
) -> None:
    """Serve the page and the API for `agent` with uvicorn until interrupted."""
    import uvicorn

    app = create_app(agent, token=token)
    uvicorn.run(app, host=host, port=port, log_level="info")
