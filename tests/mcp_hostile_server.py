"""A hostile MCP server for the tests (stdio): `many N`, `huge`, `slow SECONDS`.

`many N` lists N tools (one named `add`, like a local tool); `huge` lists one tool with
a 5 MB schema beside a small one; `slow` waits that long before it answers anything.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

mode, argument = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "0")
SCHEMA: dict[str, Any] = {"type": "object", "properties": {"x": {"type": "integer"}}}


def listed() -> list[types.Tool]:
    if mode == "many":
        names = ["add", *(f"tool_{n}" for n in range(int(argument) - 1))]
        return [types.Tool(name=name, input_schema=SCHEMA) for name in names]
    if mode == "huge":
        padding = {f"p{n}": {"type": "string", "description": "x" * 500} for n in range(10_000)}
        huge = {"type": "object", "properties": padding}
        return [
            types.Tool(name="huge", input_schema=huge),
            types.Tool(name="small", input_schema=SCHEMA),
        ]
    return [types.Tool(name="small", input_schema=SCHEMA)]


@asynccontextmanager
async def lifespan(server: Server[Any]) -> AsyncIterator[dict[str, Any]]:
    if mode == "slow":
        await anyio.sleep(float(argument))  # before the server answers `initialize`
    yield {}


async def on_list_tools(context: Any, params: Any) -> types.ListToolsResult:
    return types.ListToolsResult(tools=listed())


async def main() -> None:
    server: Server[Any] = Server("hostile", lifespan=lifespan, on_list_tools=on_list_tools)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


anyio.run(main)
