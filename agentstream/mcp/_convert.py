"""MCP tools as agentstream tools: names the model may use, and results as the model reads them.

Nothing here does I/O: `make_tool` wraps an MCP tool's listing around a `call` function
that the connection supplies, and `result_value` reads a `CallToolResult`.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp import types
from mcp.shared.dispatcher import ProgressFnT

from agentstream import File, Image, SetupError, Tool, ToolContext, ToolError

__all__ = [
    "Call",
    "MCPProgress",
    "ProgressHook",
    "check_prefix",
    "content_text",
    "make_tool",
    "model_names",
    "progress_callback",
    "result_value",
]

_NAME_LIMIT = 64
_PREFIX = re.compile(r"[a-zA-Z0-9_-]{1,32}")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")

Call = Callable[[str, dict[str, Any], ToolContext], Awaitable[Any]]
"""What a connection gives `make_tool`: call the MCP tool named so, for this agent call."""


@dataclass(frozen=True, slots=True)
class MCPProgress:
    """A progress notification an MCP server sent while one of its tools ran."""

    server: str
    """The server's name (`MCPServerStdio.name`, `MCPServerHTTP.name`)."""
    tool_name: str
    """The tool's name as the model calls it (with the server's prefix)."""
    tool_call_id: str
    """The id of the model's call that is running."""
    run_id: str
    """The run the call belongs to."""
    progress: float
    """How far the tool has got, in the server's unit; it only grows."""
    total: float | None
    """The value `progress` reaches at the end, if the server knows it."""
    message: str | None
    """What the tool is doing, in the server's words."""


ProgressHook = Callable[[MCPProgress], Awaitable[None] | None]
"""Receives each `MCPProgress`; sync or async."""


def progress_callback(
    hook: ProgressHook | None, server: str, context: ToolContext
) -> ProgressFnT | None:
    """The callback handed to the MCP client for one call; the one place progress flows.

    Each notification becomes the running call's progress report (`ToolProgress`
    events, coalesced by the run): a fraction when the server says the total, and its
    message. `hook`, if given, also receives every notification as an `MCPProgress`.
    """

    async def forward(progress: float, total: float | None, message: str | None) -> None:
        fraction = None
        if total and total > 0 and progress >= 0:
            fraction = min(progress / total, 1.0)
        context.progress(fraction, message)
        if hook is None:
            return
        report = MCPProgress(
            server,
            context.tool_name,
            context.tool_call_id,
            context.run_id,
            progress,
            total,
            message,
        )
        outcome = hook(report)
        if inspect.isawaitable(outcome):
            await outcome

    return forward


def check_prefix(prefix: str | None) -> None:
    """Refuse a prefix that cannot start a tool name."""
    if prefix is not None and not _PREFIX.fullmatch(prefix):
        raise SetupError(
            f"invalid prefix {prefix!r}: 1-32 letters, digits, '_' or '-' (it starts tool names)"
        )


def model_names(prefix: str | None, names: list[str]) -> dict[str, str]:
    """The name the model calls each MCP tool by: `prefix_name`, made safe and unique.

    Tool names for the model must match `[a-zA-Z0-9_-]{1,64}`. Other characters become
    `_`; a name that is then too long, or that clashes with an earlier one, ends with
    8 hex digits of a hash of the original so it stays stable across listings.
    """
    chosen: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        full = f"{prefix}_{name}" if prefix else name
        safe = _UNSAFE.sub("_", full)[:_NAME_LIMIT] or "_"
        if safe in taken or len(full) > _NAME_LIMIT:
            digest = hashlib.sha256(full.encode()).hexdigest()[:8]
            safe = f"{safe[: _NAME_LIMIT - 9]}_{digest}"
        taken.add(safe)
        chosen[name] = safe
    return chosen


def make_tool(listed: types.Tool, name: str, call: Call) -> Tool:
    """An agentstream tool for `listed`, called `name`; its schema is the server's.

    Arguments are checked against the server's input schema (with `jsonschema`) before
    the call is sent. Raises `ToolDefinitionError` if the schema is not a valid one.
    """
    schema: dict[str, Any] = dict(listed.input_schema)
    schema.setdefault("type", "object")
    mcp_name = listed.name

    async def call_mcp_tool(arguments: dict[str, Any], context: ToolContext) -> Any:
        return await call(mcp_name, arguments, context)

    call_mcp_tool.__qualname__ = call_mcp_tool.__name__ = name
    description = listed.description or listed.title or ""
    return Tool.from_schema(name, schema, call_mcp_tool, description=description)


def result_value(result: types.CallToolResult) -> Any:
    """What the tool returns to the run: its images and files with its text, else its
    structured content if any, else the content as text.

    Images and binary resources become `Image`s and `File`s in a list with the text of
    the other blocks, so they reach the model as images and files. An `isError` result
    raises `ToolError` with the server's text, which the run sends back to the model
    as the call's failure.
    """
    if result.is_error:
        text = content_text(result.content)
        raise ToolError(text or "the MCP tool reported an error without a message")
    if any(_media_block(block) for block in result.content):
        return [_block_value(block) for block in result.content]
    if result.structured_content is not None:
        return dict(result.structured_content)
    return content_text(result.content)


def content_text(blocks: list[types.ContentBlock]) -> str:
    """Content blocks as text for the model; binary content as a short note."""
    return "\n".join(_block_text(block) for block in blocks)


def _block_text(block: types.ContentBlock) -> str:
    match block:
        case types.TextContent(text=text):
            return text
        case types.ImageContent(mime_type=mime, data=data):
            return f"[image: {mime}, {_decoded_size(data)} bytes, not shown]"
        case types.AudioContent(mime_type=mime, data=data):
            return f"[audio: {mime}, {_decoded_size(data)} bytes, not shown]"
        case types.ResourceLink(uri=uri, name=name, mime_type=mime):
            return f"[resource link: {uri} ({name}{', ' + mime if mime else ''})]"
        case types.EmbeddedResource(resource=types.TextResourceContents(text=text)):
            return text
        case types.EmbeddedResource(resource=types.BlobResourceContents(uri=uri, blob=blob)):
            return f"[resource: {uri}, {_decoded_size(blob)} bytes, not shown]"
    return f"[{getattr(block, 'type', 'unknown')} content, not shown]"


def _media_block(block: types.ContentBlock) -> bool:
    return isinstance(block, types.ImageContent) or (
        isinstance(block, types.EmbeddedResource)
        and isinstance(block.resource, types.BlobResourceContents)
    )


def _block_value(block: types.ContentBlock) -> Any:
    """An image or binary resource as an `Image` or `File`; any other block as text."""
    try:
        match block:
            case types.ImageContent(mime_type=mime, data=data):
                return Image(base64.b64decode(data, validate=True), mime)
            case types.EmbeddedResource(
                resource=types.BlobResourceContents(uri=uri, blob=blob, mime_type=mime)
            ):
                decoded = base64.b64decode(blob, validate=True)
                kind = mime or "application/octet-stream"
                if kind.startswith("image/"):
                    return Image(decoded, kind)
                return File(decoded, kind, str(uri).rstrip("/").rsplit("/", 1)[-1] or None)
    except (ValueError, SetupError):  # bad base64, or a media type that is not one
        pass
    return _block_text(block)


def _decoded_size(data: str) -> int:
    """The size of base64 `data` once decoded, without decoding it."""
    return len(data) * 3 // 4 - data.endswith("=") - data.endswith("==")
