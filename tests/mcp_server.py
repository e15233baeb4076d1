"""An MCP server for the tests, written with the `mcp` package: run it as a real process.

`python tests/mcp_server.py` serves over stdio; `python tests/mcp_server.py http` serves
streamable HTTP on a free loopback port and prints the port on its first line. When
`MCP_TEST_MARKERS` names a folder, a cancelled `slow` call leaves a file there, so a
test can see that the server was told.
"""

from __future__ import annotations

import base64
import os
import socket
import sys
from pathlib import Path

import anyio
import uvicorn
from mcp import types
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

server = MCPServer("agentstream-tests")


class Weather(BaseModel):
    city: str
    temperature: float
    sky: str


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def get_weather(city: str) -> Weather:
    """Get the current weather in a city."""
    return Weather(city=city, temperature=21.5, sky="sunny")


@server.tool()
def refuse(reason: str) -> str:
    """Always fails, with the reason given."""
    raise ToolError(f"refused: {reason}")


@server.tool()
def picture() -> Image:
    """A tiny picture."""
    return Image(data=b"\x89PNG\r\n\x1a\n" + bytes(24), format="png")


@server.tool()
def chart(month: str) -> list[types.ContentBlock]:
    """The sales chart of a month: a caption, a picture, and the report as a PDF."""
    report = types.BlobResourceContents(
        uri=f"file:///reports/{month}.pdf",
        mime_type="application/pdf",
        blob=base64.b64encode(b"%PDF-1.4 " + month.encode()).decode(),
    )
    return [
        types.TextContent(type="text", text=f"sales for {month}"),
        Image(data=b"\x89PNG\r\n\x1a\n" + bytes(24), format="png").to_image_content(),
        types.EmbeddedResource(type="resource", resource=report),
    ]


@server.tool()
async def slow(seconds: float, label: str, ctx: Context) -> str:
    """Take `seconds` to answer, reporting progress first."""
    await ctx.report_progress(1, 2, f"{label}: halfway")
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        markers = os.environ.get("MCP_TEST_MARKERS")
        if markers:
            (Path(markers) / f"cancelled-{label}").write_text("cancelled")
        raise
    return f"{label}: done"


@server.tool()
def crash() -> str:
    """The server process exits in the middle of this call."""
    os._exit(3)


@server.tool()
async def grow(name: str, ctx: Context) -> str:
    """Add a tool called `name` that doubles a number, and say the list changed."""

    def double(x: int) -> int:
        return 2 * x

    server.add_tool(double, name=name, description="Double an integer.")
    await ctx.notify_tools_changed()  # 2026-era clients listening
    await ctx.session.send_tool_list_changed()  # earlier clients
    return f"added {name}"


@server.tool()
def whoami(ctx: Context) -> str:
    """The Authorization header of the request, if any."""
    return (ctx.headers or {}).get("authorization", "none")


def serve_http() -> None:
    """Serve streamable HTTP on a free loopback port; print the port once it listens."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(server.streamable_http_app(), log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    if sys.argv[1:] == ["http"]:
        serve_http()
    else:
        server.run()
