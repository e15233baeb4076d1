"""MCP tools end to end: a real MCP server process, over stdio and over HTTP on loopback.

The server is `tests/mcp_server.py`, written with the `mcp` package; the agent is driven
by the scripted model through the real openai client.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest

from agentstream import (
    Agent,
    Event,
    File,
    Image,
    RunFinished,
    RunStarted,
    ToolCallInvalid,
    ToolContext,
    ToolError,
    ToolFinished,
    ToolProgress,
    ToolStarted,
    tool,
)
from agentstream.mcp import (
    MCPConnectionError,
    MCPProgress,
    MCPServerBase,
    MCPServerHTTP,
    MCPServerStdio,
)
from agentstream.testing import Reply, ScriptedModel, ToolCall

pytestmark = pytest.mark.anyio

SERVER = str(Path(__file__).with_name("mcp_server.py"))
LIMIT = 60  # seconds; a hang must fail the test, not stall the suite (never a timing check)


class HTTPServer:
    """`tests/mcp_server.py http` as a subprocess, on a free loopback port."""

    def __init__(self, markers: Path | None = None) -> None:
        env = {**os.environ, "MCP_TEST_MARKERS": str(markers)} if markers else None
        self.process = subprocess.Popen(
            [sys.executable, SERVER, "http"], stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # printed once the socket listens
        assert line.strip().isdigit(), "the MCP test server did not start"
        self.url = f"http://127.0.0.1:{int(line)}/mcp"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def http_server() -> Iterator[HTTPServer]:
    server = HTTPServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(params=["stdio", "http"])
def connect(request: pytest.FixtureRequest, markers: Path) -> Iterator[Any]:
    """Make a connection to a fresh test server over the transport of the param."""
    servers: list[HTTPServer] = []

    def make(prefix: str | None = "srv", **options: Any) -> MCPServerBase:
        if request.param == "stdio":
            env = {"MCP_TEST_MARKERS": str(markers)}
            return MCPServerStdio(sys.executable, [SERVER], env=env, prefix=prefix, **options)
        servers.append(HTTPServer(markers))
        return MCPServerHTTP(servers[-1].url, prefix=prefix, **options)

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


def agent_for(model: ScriptedModel, *tools: Any) -> Agent:
    return Agent(client=model.async_client(), model="scripted", tools=tools)


async def run_all(agent: Agent, prompt: str = "go") -> tuple[list[Event], Any]:
    events: list[Event] = []
    with anyio.fail_after(LIMIT):
        async with agent.stream(prompt) as run:
            async for event in run:
                events.append(event)
    return events, run.result


def finished(events: list[Event]) -> dict[str, ToolFinished]:
    return {e.id: e for e in events if isinstance(e, ToolFinished)}


async def test_tools_are_called_end_to_end(connect: Any) -> None:
    model = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("srv_add", {"a": 2, "b": 40}, id="c1"),
                    ToolCall("srv_get_weather", {"city": "Paris"}, id="c2"),
                    ToolCall("srv_picture", {}, id="c3"),
                ]
            ),
            Reply("It is sunny in Paris, and 2 + 40 = 42."),
        ]
    )
    with anyio.fail_after(LIMIT):
        async with connect() as server:
            assert server.connected
            names = [tool.name for tool in server.tools]
            assert {"srv_add", "srv_get_weather", "srv_slow", "srv_grow"} <= set(names)
            events, result = await run_all(agent_for(model, server))
    assert not server.connected
    assert server.tools == ()
    started = next(e for e in events if isinstance(e, RunStarted))
    assert set(names) == set(started.tools)
    done = finished(events)
    assert done["c1"].output == '{"result":42}'
    assert done["c1"].value == {"result": 42}
    assert done["c2"].value == {"city": "Paris", "temperature": 21.5, "sky": "sunny"}
    assert done["c3"].output == "[image: image/png, 32 bytes]"  # and the image itself:
    assert done["c3"].media == (Image(b"\x89PNG\r\n\x1a\n" + bytes(24), "image/png"),)
    assert result.output == "It is sunny in Paris, and 2 + 40 = 42."
    # The server's input schema is the tool's schema, as sent to the model.
    offered = {t["function"]["name"]: t["function"] for t in model.requests[0].tools or ()}
    add_schema = offered["srv_add"]["parameters"]
    assert add_schema["properties"].keys() == {"a", "b"}
    assert add_schema["required"] == ["a", "b"]
    assert offered["srv_add"]["description"] == "Add two integers."


async def test_arguments_are_checked_before_the_call_is_sent(connect: Any) -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("srv_add", {"a": "two", "b": 40}, id="c1")]),
            Reply("I could not add."),
        ]
    )
    with anyio.fail_after(LIMIT):
        async with connect() as server:
            events, _ = await run_all(agent_for(model, server))
    invalid = [e for e in events if isinstance(e, ToolCallInvalid)]
    assert len(invalid) == 1
    assert "'two' is not of type 'integer'" in invalid[0].error
    assert not [e for e in events if isinstance(e, ToolStarted)]  # never sent


async def test_an_error_result_is_the_calls_failure(connect: Any) -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("srv_refuse", {"reason": "no stock"}, id="c1")]),
            Reply("The shop refused."),
        ]
    )
    with anyio.fail_after(LIMIT):
        async with connect() as server:
            events, result = await run_all(agent_for(model, server))
    done = finished(events)["c1"]
    assert isinstance(done.error, ToolError)
    assert done.output.endswith("refused: no stock")  # the server's own text, as it sent it
    assert model.requests[1].messages[-1]["content"] == done.output
    assert result.output == "The shop refused."


async def test_a_server_that_dies_mid_call_fails_that_call_and_the_run_goes_on(
    connect: Any,
) -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("srv_crash", {}, id="c1")]),
            Reply(tool_calls=[ToolCall("srv_add", {"a": 1, "b": 1}, id="c2")]),
            Reply("The tool server is gone."),
        ]
    )
    with anyio.fail_after(LIMIT):
        async with connect() as server:
            events, result = await run_all(agent_for(model, server))
            assert not server.connected
    done = finished(events)
    assert isinstance(done["c1"].error, ToolError)
    assert "went away during the call" in done["c1"].output
    assert isinstance(done["c2"].error, ToolError)
    assert "MCP server 'srv'" in done["c2"].output
    assert result.output == "The tool server is gone."
    assert result.stop_reason == "answer"


async def test_cancelling_the_run_cancels_the_call_in_flight(connect: Any, markers: Path) -> None:
    progressed = anyio.Event()

    def on_progress(report: MCPProgress) -> None:
        progressed.set()

    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("srv_slow", {"seconds": 3600, "label": "long"})]),
            Reply("never"),
        ]
    )
    with anyio.fail_after(LIMIT):
        async with connect(on_progress=on_progress) as server:
            agent = agent_for(model, server)
            with anyio.CancelScope() as scope:
                async with agent.stream("go") as run:
                    async for event in run:
                        if isinstance(event, ToolStarted):
                            await progressed.wait()  # the server is inside the call
                            scope.cancel()
            assert scope.cancelled_caught
            assert run.messages[-1]["content"].startswith("cancelled")
            # The server was told, and cancelled its handler (it left a marker).
            while not (markers / "cancelled-long").exists():
                await anyio.sleep(0.02)
            # The connection is still usable after the cancelled call.
            add = next(tool for tool in server.tools if tool.name == "srv_add")
            context = ToolContext("run", "c9", "srv_add", 1, ())
            assert await add.invoke({"a": 3, "b": 4}, context) == {"result": 7}


async def test_a_call_past_its_timeout_fails_and_the_server_is_told(
    connect: Any, markers: Path
) -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("srv_slow", {"seconds": 3600, "label": "late"}, id="c1")]),
            Reply("It took too long."),
        ]
    )
    with anyio.fail_after(LIMIT):
        async with connect(call_timeout=2) as server:
            events, result = await run_all(agent_for(model, server))
            while not (markers / "cancelled-late").exists():
                await anyio.sleep(0.02)
    done = finished(events)["c1"]
    assert isinstance(done.error, ToolError)
    assert done.output == "the MCP server 'srv' did not answer within 2 s"
    assert result.output == "It took too long."


async def test_progress_reaches_the_hook(connect: Any) -> None:
    reports: list[MCPProgress] = []
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("srv_slow", {"seconds": 0, "label": "quick"}, id="c1")]),
            Reply("done"),
        ]
    )
    with anyio.fail_after(LIMIT):
        async with connect(on_progress=reports.append) as server:
            events, _ = await run_all(agent_for(model, server))
    assert finished(events)["c1"].value == {"result": "quick: done"}
    assert [(r.tool_call_id, r.tool_name, r.progress, r.total, r.message) for r in reports] == [
        ("c1", "srv_slow", 1, 2, "quick: halfway")
    ]
    assert reports[0].server == "srv"


async def test_progress_becomes_tool_progress_events(connect: Any) -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("srv_slow", {"seconds": 0, "label": "quick"}, id="c1")]),
            Reply("done"),
        ]
    )
    with anyio.fail_after(LIMIT):
        async with connect() as server:
            events, _ = await run_all(agent_for(model, server))
    progress = [e for e in events if isinstance(e, ToolProgress)]
    assert [(e.id, e.name, e.fraction, e.message) for e in progress] == [
        ("c1", "srv_slow", 0.5, "quick: halfway")
    ]
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ToolProgress") < kinds.index("ToolFinished")


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_tool_list_is_read_again_when_the_server_says_it_changed(
    connect: Any, mode: str
) -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("srv_grow", {"name": "double"}, id="c1")]),
            Reply(tool_calls=[ToolCall("srv_double", {"x": 21}, id="c2")]),
            Reply("21 doubled is 42."),
        ]
    )
    events: list[Event] = []
    with anyio.fail_after(LIMIT):
        async with connect(mode=mode) as server:
            before = server.tools
            async with agent_for(model, server).stream("go") as run:
                async for event in run:
                    events.append(event)
                    if isinstance(event, ToolFinished) and event.id == "c1":
                        # The next step starts when the consumer asks for the next event;
                        # wait here (bounded above) for the notification to be acted on.
                        while server.tools is before:
                            await anyio.sleep(0.01)
    assert finished(events)["c2"].value == {"result": 42}
    offered = [[t["function"]["name"] for t in r.tools or ()] for r in model.requests]
    assert "srv_double" not in offered[0]
    assert "srv_double" in offered[1]
    assert isinstance(events[-1], RunFinished)


async def test_two_servers_with_prefixes(markers: Path) -> None:
    model = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("one_add", {"a": 1, "b": 2}, id="c1"),
                    ToolCall("two_add", {"a": 3, "b": 4}, id="c2"),
                ]
            ),
            Reply("3 and 7."),
        ]
    )
    with anyio.fail_after(LIMIT):
        async with (
            MCPServerStdio(sys.executable, [SERVER], prefix="one") as one,
            MCPServerStdio(sys.executable, [SERVER], prefix="two") as two,
            MCPServerStdio(sys.executable, [SERVER]) as bare,
        ):
            events, _ = await run_all(agent_for(model, one, two))
            # A server's tool whose name is taken is left out, not the agent failed.
            clashing = agent_for(model, bare, MCPServerStdio(sys.executable, [SERVER]), bare)
            assert list(clashing.tools).count("add") == 1
    done = finished(events)
    assert (done["c1"].value, done["c2"].value) == ({"result": 3}, {"result": 7})


async def test_http_headers_reach_the_server_and_stay_secret(http_server: HTTPServer) -> None:
    secret = "Bearer s3cret-token"
    server = MCPServerHTTP(http_server.url, headers={"Authorization": secret}, prefix="web")
    with anyio.fail_after(LIMIT):
        async with server:
            whoami = next(tool for tool in server.tools if tool.name == "web_whoami")
            context = ToolContext("run", "c1", "web_whoami", 1, ())
            assert await whoami.invoke({}, context) == {"result": secret}
    assert "s3cret" not in repr(server)


async def test_a_server_that_does_not_start_is_a_connection_error() -> None:
    server = MCPServerStdio(sys.executable, ["-c", "import sys; sys.exit(1)"], name="broken")
    with anyio.fail_after(LIMIT), pytest.raises(MCPConnectionError, match="'broken'"):
        async with server:
            pass
    assert not server.connected


async def test_a_url_where_nothing_listens_is_a_connection_error() -> None:
    server = MCPServerHTTP(f"http://127.0.0.1:{_closed_port()}/mcp", connect_timeout=20)
    with anyio.fail_after(LIMIT), pytest.raises(MCPConnectionError, match=r"127\.0\.0\.1"):
        async with server:
            pass


async def test_a_tool_kept_after_the_connection_closed_fails_clearly() -> None:
    with anyio.fail_after(LIMIT):
        async with MCPServerStdio(sys.executable, [SERVER], prefix="srv") as server:
            kept = list(server.tools)
    add = next(tool for tool in kept if tool.name == "srv_add")
    with pytest.raises(ToolError, match="'srv' is not connected"):
        await add.invoke({"a": 1, "b": 2}, ToolContext("run", "c1", "srv_add", 1, ()))


def _closed_port() -> int:
    """A loopback port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- a hostile server: too many tools, huge schemas, a slow start -----------------------

HOSTILE = str(Path(__file__).with_name("mcp_hostile_server.py"))


async def test_a_server_listing_20000_tools_gives_at_most_max_tools(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = ScriptedModel([Reply(tool_calls=[ToolCall("tool_3", {"x": 1})]), Reply("ok")])
    with anyio.fail_after(LIMIT):
        async with MCPServerStdio(sys.executable, [HOSTILE, "many", "20000"]) as server:
            assert len(server.tools) == server.max_tools == 256
            assert len(server.rejected) == 20_000 - 256
            assert "max_tools" in server.rejected["tool_19998"]
            agent = Agent(client=model.async_client(), model="m", tools=[server])
            await agent.run("go")
    assert len(model.requests[0].body["tools"]) == 256  # not 20,000 definitions a request
    assert "19744 tools left out" in caplog.text


async def test_a_huge_tool_definition_is_left_out_and_the_rest_kept() -> None:
    with anyio.fail_after(LIMIT):
        async with MCPServerStdio(sys.executable, [HOSTILE, "huge"]) as server:
            assert [tool.name for tool in server.tools] == ["small"]
            assert "max_definition_size" in server.rejected["huge"]
    roomy = MCPServerStdio(sys.executable, [HOSTILE, "huge"])
    roomy.max_definition_size = 10_000_000  # a larger limit, set before connecting
    with anyio.fail_after(LIMIT):
        async with roomy:
            assert sorted(tool.name for tool in roomy.tools) == ["huge", "small"]


async def test_connect_timeout_holds_against_a_slow_initialize() -> None:
    server = MCPServerStdio(sys.executable, [HOSTILE, "slow", "600"], connect_timeout=1)
    with anyio.fail_after(LIMIT), pytest.raises(MCPConnectionError, match="no answer within 1 s"):
        async with server:
            pass


async def test_a_server_tool_named_like_a_local_one_is_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @tool
    def add(a: int, b: int) -> str:
        """The local add."""
        return f"local {a + b}"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("add", {"a": 1, "b": 2})]), Reply("3")])
    with anyio.fail_after(LIMIT):
        async with MCPServerStdio(sys.executable, [HOSTILE, "many", "3"]) as server:
            agent = Agent(client=model.async_client(), model="m", tools=[add, server])
            result = await agent.run("go")
    assert result.output == "3"
    told = [m for m in model.requests[1].messages if m["role"] == "tool"]
    assert told[0]["content"] == "local 3"
    assert [t["function"]["name"] for t in model.requests[0].body["tools"]] == [
        "add", "tool_0", "tool_1",
    ]  # fmt: skip
    assert "'add' is left out" in caplog.text


async def test_cancel_call_cancels_one_mcp_call_and_the_run_goes_on(
    connect: Any, markers: Path
) -> None:
    progressed = anyio.Event()

    def on_progress(report: MCPProgress) -> None:
        progressed.set()

    model = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("srv_slow", {"seconds": 3600, "label": "one"}, id="c1"),
                    ToolCall("srv_add", {"a": 1, "b": 2}, id="c2"),
                ]
            ),
            Reply("Added; the slow one was cancelled."),
        ]
    )
    events: list[Event] = []
    with anyio.fail_after(LIMIT):
        async with connect(on_progress=on_progress) as server:
            async with agent_for(model, server).stream("go") as run:
                async for event in run:
                    events.append(event)
                    if isinstance(event, ToolStarted) and event.id == "c1":
                        await progressed.wait()  # the server is inside the call
                        run.cancel_call("c1", "not needed")
            # While still connected: the server was told (`notifications/cancelled`),
            # and its handler left the marker.
            while not (markers / "cancelled-one").exists():
                await anyio.sleep(0.02)
    done = finished(events)
    assert done["c1"].output.startswith("Cancelled by the user")
    assert done["c1"].output.endswith("Reason: not needed")
    assert done["c2"].error is None
    sent = {
        m["tool_call_id"]: m["content"] for m in model.requests[1].messages if m["role"] == "tool"
    }
    assert sent["c1"] == done["c1"].output
    assert run.result.output == "Added; the slow one was cancelled."


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_an_mcp_image_and_file_reach_the_next_request(
    connect: Any, api: Literal["chat", "responses"]
) -> None:
    """MCP image and blob content pass through to the model in each wire's shape."""
    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("srv_chart", {"month": "May"}, id="c1")]), Reply("Done.")]
    )
    with anyio.fail_after(LIMIT):
        async with connect() as server:
            agent = Agent(client=model.async_client(), model="scripted", tools=[server], api=api)
            events, _ = await run_all(agent)
    (done,) = [e for e in events if isinstance(e, ToolFinished)]
    picture = Image(b"\x89PNG\r\n\x1a\n" + bytes(24), "image/png")
    report = File(b"%PDF-1.4 May", "application/pdf", "May.pdf")
    assert done.media == (picture, report)
    assert done.output == (
        "sales for May\n[image: image/png, 32 bytes]\n[file May.pdf: application/pdf, 12 bytes]"
    )
    body = model.requests[1].body
    if api == "chat":
        messages = body["messages"]
        assert messages[-2] == {"role": "tool", "tool_call_id": "c1", "content": done.output}
        assert messages[-1] == {
            "role": "user",
            "content": [
                {"type": "text", "text": "Attached to the result of call c1:"},
                {"type": "image_url", "image_url": {"url": picture.data_url}},
                {"type": "file", "file": {"file_data": report.data_url, "filename": "May.pdf"}},
            ],
        }
    else:
        assert body["input"][-1] == {
            "type": "function_call_output",
            "call_id": "c1",
            "output": [
                {"type": "input_text", "text": done.output},
                {"type": "input_image", "image_url": picture.data_url, "detail": "auto"},
                {"type": "input_file", "file_data": report.data_url, "filename": "May.pdf"},
            ],
        }
