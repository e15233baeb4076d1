"""The two ways to reach an MCP server: a command over stdio, a URL over streamable HTTP."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TextIO
from urllib.parse import urlsplit

import httpx2
from mcp import StdioServerParameters
from mcp.client import Transport
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from ._connection import MCPServerBase
from ._convert import ProgressHook

__all__ = ["MCPServerHTTP", "MCPServerStdio"]

_REDACTED = "[redacted]"


class MCPServerStdio(MCPServerBase):
    """An MCP server started as a subprocess and spoken to over its stdin and stdout.

    ```python
    async with MCPServerStdio("uvx", ["mcp-server-time"], prefix="time") as time:
        agent = Agent(client=client, model=model, tools=[time])
    ```

    `env` is added to a minimal default environment (as the `mcp` package builds it);
    the server's stderr goes to `errlog` (default: this process's stderr). Leaving the
    block stops the subprocess.
    """

    def __init__(
        self,
        command: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        prefix: str | None = None,
        name: str | None = None,
        call_timeout: float | None = 300.0,
        connect_timeout: float = 30.0,
        on_progress: ProgressHook | None = None,
        errlog: TextIO | None = None,
        mode: Literal["auto", "legacy"] = "auto",
    ) -> None:
        super().__init__(
            name or prefix or os.path.basename(command),
            prefix=prefix,
            call_timeout=call_timeout,
            connect_timeout=connect_timeout,
            on_progress=on_progress,
            mode=mode,
        )
        self.command = command
        self.args = tuple(args)
        self._params = StdioServerParameters(
            command=command, args=list(args), env=dict(env) if env else None, cwd=cwd
        )
        self._errlog = errlog

    def __repr__(self) -> str:
        return f"MCPServerStdio({self.command!r}, {list(self.args)!r}, prefix={self.prefix!r})"

    def _transport(self) -> Transport:
        return stdio_client(self._params, errlog=_with_fileno(self._errlog or sys.stderr))


def _with_fileno(stream: TextIO) -> TextIO:
    """`stream`, or the process's own stderr when it has no file descriptor to give a child.

    `sys.stderr` may be replaced by an object without one (a notebook, a test capture).
    """
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        if sys.__stderr__ is not None:
            return sys.__stderr__
    return stream


class MCPServerHTTP(MCPServerBase):
    """An MCP server at a URL, spoken to over streamable HTTP.

    ```python
    auth = {"Authorization": f"Bearer {token}"}
    async with MCPServerHTTP("https://example.com/mcp", headers=auth, prefix="docs") as docs:
        agent = Agent(client=client, model=model, tools=[docs])
    ```

    `headers` go with every request and never appear in a repr or an error message. For
    other HTTP settings (proxies, TLS, OAuth), pass your own `httpx2.AsyncClient` as
    `http_client`; it is used as it is and left open.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        http_client: httpx2.AsyncClient | None = None,
        prefix: str | None = None,
        name: str | None = None,
        call_timeout: float | None = 300.0,
        connect_timeout: float = 30.0,
        on_progress: ProgressHook | None = None,
        mode: Literal["auto", "legacy"] = "auto",
    ) -> None:
        parts = urlsplit(url)
        super().__init__(
            name or prefix or parts.hostname or url,
            prefix=prefix,
            call_timeout=call_timeout,
            connect_timeout=connect_timeout,
            on_progress=on_progress,
            mode=mode,
        )
        self.url = url
        self._headers = dict(headers or {})
        self._http_client = http_client
        self._secrets = [v for v in self._headers.values() if v]
        if parts.password:
            self._secrets.append(parts.password)

    def __repr__(self) -> str:
        return f"MCPServerHTTP({self._redact(self.url)!r}, prefix={self.prefix!r})"

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text

    def _transport(self) -> Transport:
        return self._connect()

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[Any]:
        if self._http_client is not None:
            async with streamable_http_client(self.url, http_client=self._http_client) as streams:
                yield streams
            return
        # The `mcp` package's defaults: a server may hold a response stream open for long.
        timeout = httpx2.Timeout(30.0, read=300.0)
        async with (
            httpx2.AsyncClient(headers=self._headers, timeout=timeout) as http,
            streamable_http_client(self.url, http_client=http) as streams,
        ):
            yield streams
