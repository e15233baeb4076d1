"""Serving the chat page and its API with uvicorn, and the page's demo tools.

`python -m agentstream web` (in `agentstream.cli`) builds the agent and calls `serve`.
"""

from __future__ import annotations

import zlib

import anyio

from agentstream import Agent, Store, Tool, tool

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


@tool(needs_approval=True)
async def book_hotel(city: str, nights: int) -> str:
    """Book a hotel room in a city (needs the user's approval; nothing is really booked).

    Args:
        city: The city, e.g. "Rome".
        nights: How many nights, 1 to 30.
    """
    nights = min(max(nights, 1), 30)
    reference = zlib.crc32(f"{city.strip().lower()}/{nights}".encode()) % 100_000
    await anyio.sleep(0.2)
    return f"booked {nights} night{'s' if nights > 1 else ''} in {city}, reference H{reference:05d}"


def demo_tools() -> list[Tool]:
    """The page's default tools: weather (with latency), a slow job, a booking to approve."""
    return [get_weather, wait_seconds, book_hotel]


def serve(
    agent: Agent,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    store: Store | None = None,
) -> None:
    """Serve the page and the API for `agent` with uvicorn until interrupted.

    With `store`, runs paused for approval are kept there and survive a restart.
    """
    import uvicorn

    app = create_app(agent, token=token, store=store)
    uvicorn.run(app, host=host, port=port, log_level="info")
