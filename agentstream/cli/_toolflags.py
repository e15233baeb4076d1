"""The flags that give an agent its tools, shared by the chat command and `web`.

`--tools SPEC` (repeatable) replaces the command's default tools; `--no-default-tools`
drops them; `--mcp COMMAND` and `--mcp-url URL` add the tools of MCP servers.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from .._exceptions import SetupError
from ..tools._tool import Tool

__all__ = ["add_tool_flags", "mcp_servers", "mcp_tool_names", "tools_of"]


def add_tool_flags(group: Any, *, defaults: str) -> None:
    """Add the tool flags to `group`; `defaults` names the tools used without `--tools`."""
    group.add_argument(
        "--tools", action="append", metavar="SPEC",
        help="a module name, a .py file or a folder of them; every agentstream.Tool at "
        f"their top level is offered (repeatable; replaces {defaults})",
    )  # fmt: skip
    group.add_argument("--no-default-tools", action="store_true", help=f"do not offer {defaults}")
    group.add_argument(
        "--mcp", action="append", metavar="COMMAND",
        help='an MCP server to start over stdio, e.g. "python server.py"; its tools are '
        "offered (repeatable; needs agentstream[mcp])",
    )  # fmt: skip
    group.add_argument(
        "--mcp-url", action="append", metavar="URL",
        help="an MCP server over streamable HTTP; its tools are offered (repeatable; "
        "needs agentstream[mcp])",
    )  # fmt: skip


def tools_of(args: argparse.Namespace, defaults: Callable[[], list[Tool]]) -> list[Tool]:
    """The tools the flags ask for: `--tools`, else the defaults unless refused."""
    if args.tools:
        from ._loader import load_tools

        return load_tools(args.tools)
    return [] if args.no_default_tools else defaults()


def mcp_servers(args: argparse.Namespace) -> list[Any]:
    """The MCP servers of `--mcp` and `--mcp-url`, not yet connected."""
    if not args.mcp and not args.mcp_url:
        return []
    flag = "--mcp" if args.mcp else "--mcp-url"
    try:
        from ..mcp import MCPServerHTTP, MCPServerStdio
    except ImportError as exc:
        message = f"{flag} needs the MCP extra: pip install 'agentstream[mcp]' ({exc})"
        raise SetupError(message) from None
    servers: list[Any] = []
    for command in args.mcp or ():
        words = shlex.split(command)
        if not words:
            raise SetupError("--mcp needs a command, e.g. --mcp 'python server.py'")
        servers.append(MCPServerStdio(words[0], words[1:]))
    servers.extend(MCPServerHTTP(url) for url in args.mcp_url or ())
    return servers


def mcp_tool_names(servers: Sequence[Any]) -> list[str]:
    """The names of the servers' tools, each server connected once to list them."""
    if not servers:
        return []

    async def listed() -> list[str]:
        names: list[str] = []
        for server in servers:
            async with server:
                names.extend(tool.name for tool in server.tools)
        return names

    return anyio.run(listed)
