"""A small MCP server, written with the `mcp` package, for `examples/mcp_tools.py`.

It serves over stdio: `python examples/mcp_weather_server.py` is the command an MCP
client starts. Its tools make up their answers; a real server would call a service.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

server = MCPServer("weather")


class Weather(BaseModel):
    city: str
    temperature_c: float
    sky: str


@server.tool()
def get_weather(city: str) -> Weather:
    """Get the current weather in a city."""
    return Weather(city=city, temperature_c=21.0, sky="sunny")


@server.tool()
def get_local_time(city: str) -> str:
    """Get the local time in a city."""
    return f"It is 14:05 in {city}"


if __name__ == "__main__":
    server.run()
