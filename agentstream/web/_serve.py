"""Serving the chat page and its API with uvicorn, and the page's demo tools.

`python -m agentstream web` (in `agentstream.cli`) builds the agent and calls `serve`.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import sys
import zlib
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

import anyio

from agentstream import Agent, Store, Tool, ToolContext, tool

from ._app import create_app
from ._durable import DurableRuns

__all__ = ["demo_tools", "is_loopback", "serve"]


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
async def wait_seconds(seconds: float, ctx: ToolContext) -> str:
    """Wait a number of seconds, like a slow job (try the stop button on it).

    Args:
        seconds: How long to wait, at most 600.
    """
    total = min(max(seconds, 0.0), 600.0)
    waited = 0.0
    while waited < total:  # reports how far it is, as a long job would
        ctx.progress(waited / total, f"{waited:.0f} of {total:g} s")
        step = min(0.25, total - waited)
        await anyio.sleep(step)
        waited += step
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
    allowed_hosts: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
    header_timeout: float = 10.0,
    max_connections: int = 200,
    log_level: str = "warning",
    sockets: Sequence[socket.socket] | None = None,
    contexts: Sequence[AbstractAsyncContextManager[Any]] = (),
    durable: DurableRuns | None = None,
    graceful: int | None = None,
) -> None:
    """Serve the page and the API for `agent` with uvicorn until interrupted.

    With `store`, runs paused for approval are kept there and survive a restart. The
    loopback names are always answered; `allowed_hosts` adds others (a non-loopback
    `host` is added itself). A non-loopback `host` without `token` gets a generated one,
    printed once on stderr. A request head must arrive within `header_timeout` seconds;
    at most `max_connections` connections are open at once. `sockets`, already
    listening, are served instead of binding `host:port`; `contexts` (MCP servers the
    agent's tools come from) are entered around serving; once stopped, open responses
    get `graceful` seconds to end (None: as long as they take). With `durable` (a
    `DurableAgent` with an event log), every run is a durable workflow.
    """
    import uvicorn

    from ._connections import guarded_h11

    hosts = list(allowed_hosts)
    if not is_loopback(host):
        if host not in ("0.0.0.0", "::", ""):
            hosts.append(f"[{host}]" if ":" in host else host)
        if token is None:
            token = secrets.token_urlsafe(24)
            print(f"agentstream web: API token (generated): {token}", file=sys.stderr)
    app = create_app(
        agent, token=token, store=store, allowed_hosts=hosts, allowed_origins=allowed_origins,
        durable=durable,
    )  # fmt: skip
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=guarded_h11(header_timeout, max_connections),
        timeout_keep_alive=5,  # h11 serves one request at a time per connection, so the
        # cap on connections also bounds the requests in progress.
        h11_max_incomplete_event_size=16 * 1024,  # a request head over 16 KiB is refused
        timeout_graceful_shutdown=graceful,  # then the open responses are cut
    )
    server = uvicorn.Server(config)

    async def run() -> None:
        async with AsyncExitStack() as stack:
            for context in contexts:
                await stack.enter_async_context(context)
            await server.serve(sockets=list(sockets) if sockets is not None else None)

    anyio.run(run)  # uvicorn runs on asyncio


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is only reachable from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
