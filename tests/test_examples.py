"""The scripts in `examples/`, run against the offline model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.types import Message

from agentstream import Agent, Retries, tool
from agentstream.testing import (
    OFFLINE_MODEL_NAME,
    Fault,
    Reply,
    ScriptedModel,
    ToolCall,
    offline_model,
)
from agentstream.web import demo_tools
from examples import (
    events,
    mcp_tools,
    minimal,
    otel_traces,
    other_servers,
    parallel_tools,
    sync_run,
    web_fastapi,
    web_flask,
    web_sse,
)

from ._web import parse_sse, running_server, ui_chat_body

EXAMPLES = Path(__file__).parent.parent / "examples"
WEATHER = "What's the weather in Paris and Tokyo?"
NO_TOOL_FITS = "Write a haiku about the sea."
_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the examples choose the offline model, whatever the developer's environment."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        pytest.param("minimal.py", ["Paris", "Tokyo"], id="minimal"),
        pytest.param("events.py", ["[tool] get_weather", "[run] answer"], id="events"),
        pytest.param("parallel_tools.py", ["find_hotel", "of wall time"], id="parallel_tools"),
        pytest.param("sync_run.py", ["Q: ", "Tokyo"], id="sync_run"),
        pytest.param("other_servers.py", ["No OpenAI-compatible server"], id="other_servers"),
        pytest.param("mcp_tools.py", ["-> weather_get_weather(", "Tokyo"], id="mcp_tools"),
        pytest.param(
            "otel_traces.py",
            ["invoke_agent", "    execute_tool get_weather", "      GET /weather/Tokyo", "Tokyo"],
            id="otel_traces",
        ),
    ],
)
def test_script_runs_as_it_is(script: str, expected: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _ENV}
    # A closed port, so that a developer's own server does not answer.
    argv = [f"http://127.0.0.1:{_closed_port()}/v1"] if script == "other_servers.py" else []
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for fragment in expected:
        assert fragment in done.stdout


@pytest.mark.anyio
async def test_minimal(capsys: pytest.CaptureFixture[str]) -> None:
    await minimal.main()
    answer = capsys.readouterr().out
    assert "Paris" in answer
    assert "Tokyo" in answer


@pytest.mark.anyio
async def test_minimal_agent_calls_its_tool() -> None:
    async with offline_model().async_client() as client:
        result = await minimal.build_agent(client).run(WEATHER)
    outputs = [m["content"] for m in result.messages if m["role"] == "tool"]
    assert outputs == ["Sunny and 21 °C in Paris", "Sunny and 21 °C in Tokyo"]


@pytest.mark.anyio
async def test_events_prints_each_kind(capsys: pytest.CaptureFixture[str]) -> None:
    async with offline_model().async_client() as client:
        await events.show(events.build_agent(client), WEATHER)
    lines = capsys.readouterr().out.splitlines()
    calls = [line for line in lines if line.startswith("[model] call #")]
    assert len(calls) == 2
    assert all('"location"' in line for line in calls)  # the streamed arguments
    started = [line for line in lines if line.startswith("[tool] get_weather({")]
    finished = [line for line in lines if line.startswith("[tool] get_weather -> ")]
    assert len(started) == len(finished) == 2
    assert lines[-1].startswith("[run] answer after 2 steps")
    assert [line.split("]")[0] for line in lines if line.startswith("[step")] == [
        "[step 1",
        "[step 2",
    ]


@pytest.mark.anyio
async def test_events_text_answer(capsys: pytest.CaptureFixture[str]) -> None:
    await events.main(NO_TOOL_FITS)
    out = capsys.readouterr().out
    assert "[tool]" not in out
    assert "[step 1] stop" in out
    assert "[run] answer after 1 steps" in out


@pytest.mark.anyio
async def test_parallel_tools_overlap(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    latency = {"get_weather": 0.02, "get_local_time": 0.01, "find_hotel": 0.03}
    monkeypatch.setattr(parallel_tools, "LATENCY", latency)
    await parallel_tools.main()
    lines = capsys.readouterr().out.splitlines()
    kinds = [line.split()[2] for line in lines if line.split()[2:3] in (["start"], ["finish"])]
    assert kinds == ["start"] * 3 + ["finish"] * 3  # all three ran before any ended
    summary = next(i for i, line in enumerate(lines) if line.startswith("tools: "))
    answer = "\n".join(lines[summary + 1 :])
    for name in latency:
        assert name in answer


@pytest.mark.anyio
async def test_mcp_tools_calls_the_servers_tools(capsys: pytest.CaptureFixture[str]) -> None:
    with anyio.fail_after(60):
        await mcp_tools.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "tools: weather_get_weather, weather_get_local_time"
    results = [line for line in lines if line.startswith("<- weather_get_weather: ")]
    assert sorted(results) == [
        '<- weather_get_weather: {"city":"Paris","temperature_c":21.0,"sky":"sunny"}',
        '<- weather_get_weather: {"city":"Tokyo","temperature_c":21.0,"sky":"sunny"}',
    ]


def test_sync_run(capsys: pytest.CaptureFixture[str]) -> None:
    sync_run.main()  # two run_sync calls, each in its own event loop
    out = capsys.readouterr().out
    assert out.count("Q: ") == out.count("A: ") == len(sync_run.QUESTIONS)
    weather_answer = out.split("A: ")[1]
    assert "Paris" in weather_answer
    assert "Tokyo" in weather_answer


def _sse_data(lines: list[str]) -> list[dict[str, Any]]:
    """The JSON of each `data:` line; every other line must be blank."""
    assert all(line.startswith("data: ") or not line for line in lines)
    return [json.loads(line.removeprefix("data: ")) for line in lines if line]


@pytest.mark.anyio
async def test_web_page() -> None:
    transport = httpx2.ASGITransport(app=web_sse.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "new EventSource(" in response.text


@pytest.mark.anyio
async def test_web_chat_streams_the_run() -> None:
    app = web_sse.build_app(web_sse.build_agent(offline_model().async_client))
    transport = httpx2.ASGITransport(app=app)
    async with (
        httpx2.AsyncClient(transport=transport, base_url="http://test") as http,
        http.stream("GET", "/chat", params={"q": WEATHER}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in response.aiter_lines()]
    sent = _sse_data(lines)
    types = [event["type"] for event in sent]
    assert types[0] == "run_started"
    assert types[-1] == "run_finished"
    assert types.count("tool_call_started") == 2
    assert types.count("tool_finished") == 2
    assert "tool_call_delta" in types
    assert "text_delta" in types
    last_result = len(types) - 1 - types[::-1].index("tool_finished")
    assert types.index("tool_call_started") < types.index("tool_started") < last_result
    assert last_result < types.index("text_delta")  # the answer comes after the tools
    outputs = sorted(event["output"] for event in sent if event["type"] == "tool_finished")
    assert outputs == ["Sunny and 21 °C in Paris", "Sunny and 21 °C in Tokyo"]
    answer = "".join(event["text"] for event in sent if event["type"] == "text_delta")
    assert sent[-1]["result"]["output"] == answer


@pytest.mark.anyio
async def test_web_chat_leaves_the_run_when_the_client_goes() -> None:
    started: list[str] = []
    cancelled: list[str] = []
    both_started = anyio.Event()

    @tool
    async def get_weather(location: str) -> str:
        """Get the current weather in a city, very slowly."""
        started.append(location)
        if len(started) == 2:
            both_started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(location)
            raise
        raise AssertionError("unreachable")

    agent = Agent(client=offline_model().async_client, model="offline", tools=[get_weather])
    sent: list[Message] = []
    asked = False

    async def receive() -> Message:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await both_started.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/chat",
        "raw_path": b"/chat",
        "root_path": "",
        "query_string": b"q=What%27s+the+weather+in+Paris+and+Tokyo%3F",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    with anyio.fail_after(5):
        await web_sse.build_app(agent)(scope, receive, send)
    assert sorted(cancelled) == ["Paris", "Tokyo"]
    bodies = b"".join(message.get("body", b"") for message in sent).decode()
    assert '"type": "tool_started"' in bodies
    assert '"type": "run_finished"' not in bodies
    assert sent[-1]["more_body"] is True  # the response was abandoned, not completed


@pytest.mark.anyio
async def test_web_chat_sends_no_traceback_nor_path() -> None:
    @tool
    def get_weather(location: str) -> str:
        """Get the weather in a city.

        Args:
            location: The city.
        """
        raise ValueError(f"no weather for {location}")

    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("get_weather", {"location": "Paris"})]),
            Reply(fault=Fault(status=500, message="the model is down")),
        ]
    )
    agent = Agent(
        client=model.async_client, model="m", tools=[get_weather], retries=Retries(max_retries=0)
    )
    with running_server(web_sse.build_app(agent)) as url:
        async with httpx2.AsyncClient(base_url=url) as http:
            response = await http.get("/chat", params={"q": "Paris?"})
    sent = [frame.json() for frame in parse_sse(response.text)]
    assert [event["type"] for event in sent][-1] == "run_failed"
    assert "Traceback" not in response.text
    assert ".py" not in response.text
    failed = next(event for event in sent if event["type"] == "tool_finished")
    assert failed["error"] == {"type": "ValueError", "message": "no weather for Paris"}
    assert sent[-1]["error"]["type"] == "ModelError"


def test_web_flask_streams_the_run() -> None:
    client = web_flask.build_app(
        Agent(client=offline_model().async_client, model="m", tools=[web_flask.get_weather])
    ).test_client()
    response = client.get("/chat", query_string={"q": WEATHER}, buffered=False)
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = response.iter_encoded()
    first = next(chunks)  # streamed: the first event before the run has finished
    rest = b"".join(chunks)
    response.close()
    sent = [frame.json() for frame in parse_sse((first + rest).decode())]
    types = [event["type"] for event in sent]
    assert types[0] == "run_started"
    assert types[-1] == "run_finished"
    assert types.count("tool_finished") == 2
    assert "Tokyo" in sent[-1]["result"]["output"]


def test_web_fastapi_mounts_the_app() -> None:
    api = web_fastapi.build_api(
        Agent(client=offline_model().async_client, model="m", tools=demo_tools())
    )
    with running_server(api) as url, httpx2.Client(base_url=url, timeout=30) as http:
        health = http.get("/health")
        page = http.get("/agent/")
        chat = http.post("/agent/api/chat", json=ui_chat_body(WEATHER))
    assert health.json() == {"status": "ok"}
    assert "static/app.js" in page.text
    chunks = [frame.json() for frame in parse_sse(chat.text) if frame.data != "[DONE]"]
    assert chunks[-1]["type"] == "finish"
    assert sum(chunk["type"] == "tool-output-available" for chunk in chunks) == 2


@pytest.mark.anyio
async def test_other_servers_without_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    assert await other_servers.main([url, "some-model"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"No OpenAI-compatible server answered at {url}")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param([], ("http://localhost:11434/v1", "llama3.2"), id="default"),
        pytest.param(["vllm"], ("http://localhost:8000/v1", "Qwen/Qwen2.5-7B-Instruct"), id="vllm"),
        pytest.param(["ollama", "qwen2.5"], ("http://localhost:11434/v1", "qwen2.5"), id="model"),
        pytest.param(["http://box:1234/v1", "m"], ("http://box:1234/v1", "m"), id="url"),
    ],
)
def test_other_servers_choice(argv: list[str], expected: tuple[str, str]) -> None:
    assert other_servers.server(argv) == expected


@pytest.mark.anyio
async def test_other_servers_offline_talks_to_a_server_by_its_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await other_servers.main(["offline"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{OFFLINE_MODEL_NAME} at http://127.0.0.1:")
    assert "Paris" in out
    assert "Tokyo" in out


@pytest.mark.anyio
async def test_otel_traces_tree() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with offline_model().async_client() as client:
        await otel_traces.build_agent(client, provider).run(WEATHER)
    lines = otel_traces.span_tree(exporter.get_finished_spans())
    assert [line[:44].rstrip() for line in lines] == [  # the names fill 44 columns
        "invoke_agent",
        "  step 1",
        "    chat gpt-4o-mini",
        "    execute_tool get_weather",
        "    execute_tool get_weather",
        "  step 2",
        "    chat gpt-4o-mini",
    ]
    assert "finish_reasons=tool_calls" in lines[2]
    assert "tool.call.id=call_" in lines[3]
