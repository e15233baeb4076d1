"""A connection to one MCP server: its lifecycle, its live tool list, and the calls.

The MCP client runs in a task of the connection's own task group, never in the
caller's: a transport that breaks fails that task, which the connection catches and
records, so the caller's block (an agent run) is never cancelled by it. Each call waits
in a cancel scope the connection cancels when it closes, so a call to a server that
died ends with an error rather than waiting forever.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

import anyio
import anyio.abc
import anyio.to_thread
from mcp import Client, MCPError, types
from mcp.client import Transport
from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost

from agentstream import (
    AgentStreamError,
    SetupError,
    Tool,
    ToolContext,
    ToolDefinitionError,
    ToolError,
)

from ._convert import (
    ProgressHook,
    check_prefix,
    make_tool,
    model_names,
    progress_callback,
    result_value,
)

__all__ = ["MCPConnectionError", "MCPServerBase"]

logger = logging.getLogger("agentstream.mcp")

_PAGE_LIMIT = 100  # pages of a tool listing at most: a server that pages forever cannot hang us
_TEXT_LIMIT = 500
_CLIENT_INFO = types.Implementation(name="agentstream", version="0.1.0")
_Self = TypeVar("_Self", bound="MCPServerBase")


class MCPConnectionError(AgentStreamError):
    """Connecting to an MCP server failed: it did not start, answer or list its tools."""


class MCPServerBase:
    """What every MCP connection shares; use `MCPServerStdio` or `MCPServerHTTP`.

    An async context manager that the caller owns: entering it connects and lists the
    tools, leaving it disconnects (and stops a stdio server). It is a `Toolset`: give it
    to `Agent(tools=[...])` and the agent offers its current tools at every step.
    """

    name: str
    """The server's name in messages (and in `MCPProgress.server`)."""
    prefix: str | None
    """Put before each tool's name (`prefix_name`) so servers' tools cannot clash."""
    call_timeout: float | None
    """Seconds a call may take before it fails with an error for the model."""
    connect_timeout: float
    """Seconds to start, connect and list the tools before `MCPConnectionError`."""
    max_tools: int = 256
    """Tools taken from the server at most; the rest are left out (see `rejected`)."""
    max_definition_size: int = 64_000
    """Characters of one tool's definition (name, description, schema) at most; a larger
    one is left out: every request carries every definition."""

    def __init__(
        self,
        name: str,
        *,
        prefix: str | None,
        call_timeout: float | None,
        connect_timeout: float,
        on_progress: ProgressHook | None,
        mode: Literal["auto", "legacy"],
    ) -> None:
        check_prefix(prefix)
        if mode not in ("auto", "legacy"):
            raise SetupError(f"mode must be 'auto' or 'legacy', not {mode!r}")
        self.name = name
        self.prefix = prefix
        self.call_timeout = call_timeout
        self.connect_timeout = connect_timeout
        self._on_progress = on_progress
        self._mode = mode
        self._tools: tuple[Tool, ...] = ()
        self._rejected: dict[str, str] = {}
        self._client: Client | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._stop = anyio.Event()
        self._changed = anyio.Event()
        self._calls: set[anyio.CancelScope] = set()
        self._lost: str | None = None

    # --- what a subclass supplies -------------------------------------------------------

    def _transport(self) -> Transport:
        raise NotImplementedError

    def _redact(self, text: str) -> str:
        """`text` without this connection's secrets (an HTTP server's header values)."""
        return text

    # --- the toolset ----------------------------------------------------------------------

    @property
    def tools(self) -> Sequence[Tool]:
        """The server's tools as agentstream tools; empty while not connected.

        The same tuple until the server says its list changed and the new list is read.
        """
        return self._tools

    @property
    def rejected(self) -> dict[str, str]:
        """Tools of the server left out, by MCP name, with the reason (an invalid schema)."""
        return dict(self._rejected)

    @property
    def connected(self) -> bool:
        """Whether the connection is up: entered, and the server has not gone away."""
        return self._client is not None and self._lost is None

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self: _Self) -> _Self:
        if self._task_group is not None:
            raise SetupError(f"the MCP server {self.name!r} is already connected")
        self._stop, self._changed, self._lost = anyio.Event(), anyio.Event(), None
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        failure: BaseException | None = None
        try:
            failure = await task_group.start(self._serve)
        except BaseException:
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(None, None, None)
            raise
        if failure is not None:
            await task_group.__aexit__(None, None, None)
            raise MCPConnectionError(
                f"cannot connect to the MCP server {self.name!r}: {self._describe(failure)}"
            ) from None
        self._task_group = task_group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task_group, self._task_group = self._task_group, None
        assert task_group is not None
        self._stop.set()
        try:
            await task_group.__aexit__(None, None, None)
        finally:
            self._tools = ()

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[BaseException | None]) -> None:
        """Connect, list the tools, then keep the list fresh until asked to stop.

        Reports a failure to connect through `task_status` rather than raising it; after
        that, records any failure instead of raising it into the caller's block.
        """
        started = False
        with anyio.CancelScope(deadline=anyio.current_time() + self.connect_timeout) as connect:
            try:
                async with Client(
                    self._transport(),
                    mode=self._mode,
                    message_handler=self._on_message,
                    client_info=_CLIENT_INFO,
                    cache=None,
                ) as client:
                    await self._refresh(client)
                    async with anyio.create_task_group() as watchers:
                        watchers.start_soon(self._refresh_on_change, client)
                        watchers.start_soon(self._listen, client)
                        connect.deadline = math.inf
                        self._client, started = client, True
                        task_status.started(None)
                        await self._stop.wait()
                        watchers.cancel_scope.cancel()
            except Exception as exc:
                if not started:
                    task_status.started(exc)
                    return
                self._lost = self._describe(exc)
            finally:
                self._client = None
                self._lost = self._lost or "the connection was closed"
                for scope in self._calls:
                    scope.cancel()
        if connect.cancelled_caught and not started:
            task_status.started(TimeoutError(f"no answer within {self.connect_timeout:g} s"))

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._changed.set()

    async def _listen(self, client: Client) -> None:
        """Ask a 2026-era server to say when its tools change (older ones just send it)."""
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                async for _ in subscription:
                    self._changed.set()
        except (ListenNotSupportedError, SubscriptionLost, MCPError):
            pass  # the server does not tell: the list stays as it was read

    async def _refresh_on_change(self, client: Client) -> None:
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()  # a change while listing lists again
            try:
                await self._refresh(client)
            except Exception:
                continue  # keep the last list; a dead server fails its calls clearly

    async def _refresh(self, client: Client) -> None:
        listed: list[types.Tool] = []
        cursor: str | None = None
        with anyio.fail_after(self.connect_timeout):  # listing is part of connecting
            for _ in range(_PAGE_LIMIT):
                page = await client.list_tools(cursor=cursor)
                listed.extend(page.tools)
                cursor = page.next_cursor
                if cursor is None:
                    break
            # Sizing, schema checks and conversion cost CPU in proportion to what the
            # server sent: done in a worker thread, so the event loop (and the timeout
            # above) keeps going however much it is.
            tools, rejected = await anyio.to_thread.run_sync(
                self._convert, listed, abandon_on_cancel=True
            )
        if rejected:
            logger.warning(
                "MCP server %s: %d tools left out (first: %s)",
                self.name, len(rejected), next(iter(rejected.items())),
            )  # fmt: skip
        self._tools, self._rejected = tools, rejected

    def _convert(self, listed: list[types.Tool]) -> tuple[tuple[Tool, ...], dict[str, str]]:
        """The listed tools within the limits as agentstream tools; the others and why."""
        rejected: dict[str, str] = {}
        kept: list[types.Tool] = []
        for tool in listed:
            if len(kept) >= self.max_tools:
                rejected[tool.name] = f"over the limit of {self.max_tools} tools (max_tools)"
                continue
            size = len(tool.model_dump_json(include={"name", "description", "input_schema"}))
            if size > self.max_definition_size:
                rejected[tool.name] = (
                    f"its definition has {size} characters, over the limit of "
                    f"{self.max_definition_size} (max_definition_size)"
                )
                continue
            kept.append(tool)
        names = model_names(self.prefix, [tool.name for tool in kept])
        tools: list[Tool] = []
        for tool in kept:
            try:
                tools.append(make_tool(tool, names[tool.name], self._call))
            except ToolDefinitionError as exc:
                rejected[tool.name] = str(exc)
        return ServerTools(tools), rejected

    # --- calls ----------------------------------------------------------------------------

    async def _call(self, mcp_name: str, arguments: dict[str, Any], context: ToolContext) -> Any:
        """Call a tool of the server for the run; every failure is a `ToolError`."""
        client = self._client
        if client is None or self._lost is not None:
            reason = f" ({self._lost})" if self._lost else ""
            raise ToolError(f"the MCP server {self.name!r} is not connected{reason}")
        progress = progress_callback(self._on_progress, self.name, context)
        result: types.CallToolResult | None = None
        error: str | None = None
        with anyio.CancelScope() as closed:
            self._calls.add(closed)
            try:
                with anyio.move_on_after(self.call_timeout or math.inf) as timer:
                    result = await client.call_tool(mcp_name, arguments, progress_callback=progress)
            except MCPError as exc:
                if exc.code == types.CONNECTION_CLOSED:
                    self._lost = "the connection was closed"
                error = self._mcp_error_text(exc)
            except Exception as exc:
                error = f"the call to the MCP server {self.name!r} failed: {self._describe(exc)}"
            finally:
                self._calls.discard(closed)
        if closed.cancelled_caught:
            raise ToolError(f"the MCP server {self.name!r} went away during the call")
        if timer.cancelled_caught:
            raise ToolError(
                f"the MCP server {self.name!r} did not answer within {self.call_timeout:g} s"
            )
        if error is not None:
            raise ToolError(error)
        assert result is not None
        return result_value(result)

    def _mcp_error_text(self, exc: MCPError) -> str:
        if exc.code == types.CONNECTION_CLOSED:
            return f"the MCP server {self.name!r} went away during the call"
        return f"the MCP server {self.name!r} answered with an error: {self._clip(exc.message)}"

    def _describe(self, exc: BaseException) -> str:
        """A short account of what failed: the first real error inside exception groups."""
        inner = getattr(exc, "exceptions", None)  # an exception group (a backport on 3.10)
        while isinstance(inner, tuple) and inner and isinstance(inner[0], BaseException):
            exc = inner[0]
            inner = getattr(exc, "exceptions", None)
        text = str(exc)
        return self._clip(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)

    def _clip(self, text: str) -> str:
        text = self._redact(text)
        return text if len(text) <= _TEXT_LIMIT else text[:_TEXT_LIMIT] + "..."


class ServerTools(tuple[Tool, ...]):
    """A server's tools: on a name clash with another tool of the agent, the server's
    is the one left out (with a warning), never the agent or a run in progress."""

    __slots__ = ()
    gives_way = True
