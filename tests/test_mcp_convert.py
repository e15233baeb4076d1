"""MCP tools and results as agentstream sees them: names, schemas, content (no I/O)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from mcp import types

import agentstream.mcp
from agentstream import (
    File,
    Image,
    SetupError,
    ToolArgumentsError,
    ToolContext,
    ToolDefinitionError,
    ToolError,
)
from agentstream.mcp._convert import (
    check_prefix,
    content_text,
    make_tool,
    model_names,
    result_value,
)
from tests.test_public_api import public_names

CONTEXT = ToolContext("run_1", "call_1", "srv_add", 1, ())


def test_mcp_all_lists_exactly_the_public_names() -> None:
    assert sorted(agentstream.mcp.__all__) == agentstream.mcp.__all__
    assert set(agentstream.mcp.__all__) == public_names(agentstream.mcp)


@pytest.mark.parametrize(
    ("prefix", "names", "expected"),
    [
        pytest.param("srv", ["add", "get-time"], ["srv_add", "srv_get-time"], id="prefixed"),
        pytest.param(None, ["add"], ["add"], id="bare"),
        pytest.param(None, ["files.read"], ["files_read"], id="dot-replaced"),
        pytest.param(None, ["a.b", "a/b"], ["a_b", "a_b_"], id="clash-gets-hash"),
        pytest.param("p", ["x" * 80], ["p_" + "x" * 53 + "_"], id="long-gets-hash"),
    ],
)
def test_model_names_are_valid_and_unique(
    prefix: str | None, names: list[str], expected: list[str]
) -> None:
    chosen = model_names(prefix, names)
    assert list(chosen) == names
    values = list(chosen.values())
    assert len(set(values)) == len(values)
    for value, start in zip(values, expected, strict=True):
        assert value.startswith(start)
        assert 1 <= len(value) <= 64
        assert all(c.isalnum() or c in "_-" for c in value)
    assert model_names(prefix, names) == chosen  # stable across listings


@pytest.mark.parametrize("prefix", ["", "has space", "x" * 33, "dot.ted"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(SetupError, match="invalid prefix"):
        check_prefix(prefix)


async def _never(name: str, arguments: dict[str, Any], context: ToolContext) -> Any:
    raise AssertionError("not called")


def test_the_servers_schema_is_the_tools_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
    }
    listed = types.Tool(name="add", description="Add.", input_schema=schema)
    made = make_tool(listed, "srv_add", _never)
    assert made.definition["function"] == {
        "name": "srv_add",
        "description": "Add.",
        "parameters": schema,
    }
    assert made.validate('{"a": 1}') == {"a": 1}
    with pytest.raises(ToolArgumentsError, match="'a' is a required property"):
        made.validate("{}")


def test_an_invalid_schema_is_a_definition_error() -> None:
    listed = types.Tool(name="bad", input_schema={"type": "object", "properties": 3})
    with pytest.raises(ToolDefinitionError, match="invalid JSON schema"):
        make_tool(listed, "bad", _never)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_content_becomes_text_with_notes_for_binary() -> None:
    blocks: list[types.ContentBlock] = [
        types.TextContent(type="text", text="hello"),
        types.ImageContent(type="image", data=_b64(bytes(10)), mime_type="image/png"),
        types.AudioContent(type="audio", data=_b64(bytes(11)), mime_type="audio/wav"),
        types.ResourceLink(type="resource_link", uri="file:///a.txt", name="a.txt"),
        types.EmbeddedResource(
            type="resource",
            resource=types.TextResourceContents(uri="file:///b.txt", text="inside b"),
        ),
        types.EmbeddedResource(
            type="resource",
            resource=types.BlobResourceContents(uri="file:///c.bin", blob=_b64(bytes(12))),
        ),
    ]
    assert content_text(blocks).splitlines() == [
        "hello",
        "[image: image/png, 10 bytes, not shown]",
        "[audio: audio/wav, 11 bytes, not shown]",
        "[resource link: file:///a.txt (a.txt)]",
        "inside b",
        "[resource: file:///c.bin, 12 bytes, not shown]",
    ]


def test_results() -> None:
    text: list[types.ContentBlock] = [types.TextContent(type="text", text="plain")]
    assert result_value(types.CallToolResult(content=text)) == "plain"
    structured = types.CallToolResult(content=text, structured_content={"n": 1})
    assert result_value(structured) == {"n": 1}
    with pytest.raises(ToolError, match=r"^plain$"):
        result_value(types.CallToolResult(content=text, is_error=True))
    with pytest.raises(ToolError, match="without a message"):
        result_value(types.CallToolResult(content=[], is_error=True))


def test_images_and_blobs_pass_through() -> None:
    blocks: list[types.ContentBlock] = [
        types.TextContent(type="text", text="caption"),
        types.ImageContent(
            type="image", data=base64.b64encode(b"pixels").decode(), mime_type="image/png"
        ),
        types.EmbeddedResource(
            type="resource",
            resource=types.BlobResourceContents(
                uri="file:///r/a.pdf", mime_type="application/pdf", blob="JVBERg=="
            ),
        ),
        types.ImageContent(type="image", data="not base64!", mime_type="image/png"),
    ]
    value = result_value(types.CallToolResult(content=blocks, structured_content={"n": 1}))
    assert value == [
        "caption",
        Image(b"pixels", "image/png"),
        File(b"%PDF", "application/pdf", "a.pdf"),
        "[image: image/png, 8 bytes, not shown]",  # bad base64 stays a note
    ]
