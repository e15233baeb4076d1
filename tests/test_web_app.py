"""`agentstream.web.create_app` over real HTTP (uvicorn on loopback) and as a bare ASGI app."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from starlette.types import Message

from agentstream import Agent, Retries, tool
from agentstream.cli import main as cli_main
from agentstream.cli._web import main as web_main
from agentstream.testing import Fault, Reply, ScriptedModel, ToolCall, offline_model
from agentstream.web import RegistryFull, RunRegistry, create_app

from ._web import Frame, parse_sse, running_server, ui_chat_body

WEATHER = "What's the weather in Paris and Tokyo?"


class Gate:
    """A slow tool's switches, seen from the test thread."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()
        self.release = threading.Event()


def slow_agent(model: ScriptedModel, gate: Gate) -> Agent:
    @tool
    async def get_weather(location: str) -> str:
        """Get the weather in a city, slowly.

        Args:
            location: The city.
        """
        gate.started.set()
        try:
            while not gate.release.is_set():
                await anyio.sleep(0.01)
        except anyio.get_cancelled_exc_class():
            gate.cancelled.set()
            raise
        return f"sunny in {location}"

    return Agent(client=model.async_client, model="m", tools=[get_weather])


def two_step_model() -> ScriptedModel:
    return ScriptedModel(
        [Reply(tool_calls=[ToolCall("get_weather", {"location": "Paris"})]), Reply("Sunny.")]
    )


def test_chat_streams_the_ui_message_stream() -> None:
    agent = Agent(client=offline_model().async_client, model="m", tools=_weather_tools())
    with running_server(create_app(agent)) as url, httpx2.Client(base_url=url) as http:
        response = http.post("/api/chat", json=ui_chat_body(WEATHER))
    assert response.status_code == 200
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = parse_sse(response.text)
    assert [f.id for f in frames] == list(range(len(frames)))
    assert frames[-1].data == "[DONE]"
    chunks = [f.json() for f in frames[:-1]]
    assert chunks[0]["type"] == "start"
    assert chunks[-1]["type"] == "finish"
    outputs = [c["output"] for c in chunks if c["type"] == "tool-output-available"]
    assert sorted(outputs) == ["sunny in Paris", "sunny in Tokyo"]


def _weather_tools() -> list[Any]:
    @tool
    def get_weather(location: str) -> str:
        """Get the weather in a city.

        Args:
            location: The city.
        """
        return f"sunny in {location}"

    return [get_weather]


_DELTAS = {"text-delta": "delta", "reasoning-delta": "delta", "tool-input-delta": "inputTextDelta"}


def folded(frames: list[Frame]) -> tuple[list[str], dict[tuple[str, str], str]]:
    """The frames as a reader ends up with them: the other frames in order, and each
    part's pieces joined (a settled part's pieces are kept as one frame)."""
    others: list[str] = []
    texts: dict[tuple[str, str], str] = {}
    for frame in frames:
        data: Any = json.loads(frame.data) if frame.data and frame.data != "[DONE]" else {}
        field = _DELTAS.get(data.get("type", "")) if isinstance(data, dict) else None
        if field is None:
            others.append(frame.data or "")
            continue
        key = (data["type"], data.get("id") or data.get("toolCallId") or "")
        texts[key] = texts.get(key, "") + data[field]
    return others, texts


def test_reattaching_continues_after_the_last_event_without_a_new_model_request() -> None:
    model, gate = two_step_model(), Gate()
    app = create_app(slow_agent(model, gate), registry=RunRegistry(reattach_grace=30))
    with running_server(app) as url, httpx2.Client(base_url=url, timeout=20) as http:
        seen = []
        with http.stream("POST", "/api/chat", json=ui_chat_body("Paris?", "c-re")) as response:
            for line in response.iter_lines():
                if line.startswith("id:"):
                    seen.append(int(line[3:]))
                if gate.started.is_set() and seen:
                    break  # the connection drops mid-run
        last = seen[-1]
        gate.release.set()
        again = http.get("/api/chat/c-re/stream", headers={"last-event-id": str(last)})
        whole = http.get("/api/chat/c-re/stream")
        late = http.get("/api/chat/c-re/stream", headers={"last-event-id": str(last)})
        assert http.get("/api/chat/nobody/stream").status_code == 204
    assert not gate.cancelled.is_set()
    rest = parse_sse(again.text)
    assert (rest[0].id or 0) > last
    assert rest[-1].data == "[DONE]"
    everything = parse_sse(whole.text)
    ids = [f.id or 0 for f in everything]
    assert ids == sorted(set(ids))  # increasing; settled deltas leave gaps (compacted)
    # What a reader gets after `last` is the same whenever it comes back: pieces read
    # while the run went on, or joined once their part settled (see web/_replay.py).
    assert folded(rest) == folded(parse_sse(late.text))
    assert [json.loads(f.data or "")["type"] for f in rest[-2:-1]] == ["finish"]
    assert len([r for r in model.requests if r.path.endswith("/chat/completions")]) == 2


def test_the_stop_request_cancels_the_run_and_its_tools() -> None:
    model, gate = two_step_model(), Gate()
    with (
        running_server(create_app(slow_agent(model, gate))) as url,
        httpx2.Client(base_url=url, timeout=20) as http,
        http.stream("POST", "/api/chat", json=ui_chat_body("Paris?", "c-stop")) as response,
    ):
        lines: list[str] = []
        stopped = False
        for line in response.iter_lines():
            lines.append(line)
            if gate.started.is_set() and not stopped:
                assert http.post("/api/chat/c-stop/stop", json={}).status_code == 204
                stopped = True
    assert gate.cancelled.wait(5)
    chunks = [f for f in parse_sse("\n".join(lines) + "\n\n") if f.data]
    assert chunks[-1].data == "[DONE]"
    assert chunks[-2].json() == {"type": "abort", "reason": "stopped by the user"}
    assert len(model.requests) == 1


def test_a_client_that_goes_away_cancels_the_run_after_the_grace_period() -> None:
    model, gate = two_step_model(), Gate()
    app = create_app(slow_agent(model, gate), registry=RunRegistry(reattach_grace=0.2))
    with running_server(app) as url, httpx2.Client(base_url=url, timeout=20) as http:
        with http.stream("POST", "/api/chat", json=ui_chat_body("Paris?", "c-gone")) as response:
            for _ in response.iter_lines():
                if gate.started.is_set():
                    break
        assert gate.cancelled.wait(10)
        kept = http.get("/api/chat/c-gone/stream")
    chunks = [f.json() for f in parse_sse(kept.text) if f.data and f.data != "[DONE]"]
    assert chunks[-1] == {"type": "abort", "reason": "disconnected"}


def test_json_events_have_ids_and_can_be_followed_again() -> None:
    agent = Agent(client=offline_model().async_client, model="m", tools=_weather_tools())
    with running_server(create_app(agent)) as url, httpx2.Client(base_url=url) as http:
        response = http.post("/api/events", json={"prompt": WEATHER})
        key = response.headers["x-agentstream-run"]
        tail = http.get(f"/api/events/{key}", headers={"last-event-id": "3"})
    frames = parse_sse(response.text)
    events = [f.json() for f in frames]
    assert events[0]["type"] == "run_started"
    assert events[0]["run_id"] == key
    assert events[-1]["type"] == "run_finished"
    assert [f.id for f in frames] == list(range(len(frames)))
    again = parse_sse(tail.text)
    assert (again[0].id or 0) > 3
    assert again[-1] == frames[-1]
    # Settled deltas come back joined (fewer frames), with the same text and events.
    assert _told(again) == _told(frames[4:])


def _told(frames: list[Any]) -> tuple[str, list[str]]:
    events = [f.json() for f in frames]
    text = "".join(e.get("text", "") for e in events if e["type"].endswith("_delta"))
    return text, [e["type"] for e in events if not e["type"].endswith("_delta")]


def test_errors_reach_the_client_as_type_and_message_only() -> None:
    model = ScriptedModel([Reply(fault=Fault(status=500, message="the model is down"))])
    agent = Agent(client=model.async_client, model="m", retries=Retries(max_retries=0))
    with running_server(create_app(agent)) as url, httpx2.Client(base_url=url) as http:
        ui = http.post("/api/chat", json=ui_chat_body("hi", "c-err"))
        events = http.post("/api/events", json={"prompt": "hi"})
    for body in (ui.text, events.text):
        assert "Traceback" not in body
        assert ".py" not in body
    (error,) = [f.json() for f in parse_sse(ui.text) if f.data and '"type":"error"' in f.data]
    assert error["errorText"].startswith("ModelError: ")
    failed = [f.json() for f in parse_sse(events.text)][-1]
    assert failed["type"] == "run_failed"
    assert failed["error"]["type"] == "ModelError"
    assert set(failed["error"]) == {"type", "message"}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"x" * 2_000, 413, id="too-big"),
        pytest.param(b"{not json", 400, id="not-json"),
        pytest.param(b"[1]", 400, id="not-an-object"),
        pytest.param(b'{"messages": [{"role": "robot", "parts": []}]}', 400, id="bad-message"),
    ],
)
def test_bad_requests_are_refused(body: bytes, status: int) -> None:
    agent = Agent(client=offline_model().async_client, model="m")
    app = create_app(agent, max_body_size=1_000)
    with running_server(app) as url, httpx2.Client(base_url=url) as http:
        json_type = {"content-type": "application/json"}
        response = http.post("/api/chat", content=body, headers=json_type)
    assert response.status_code == status
    assert set(response.json()) == {"error"}
    assert "Traceback" not in response.text


def test_a_token_guards_the_api_but_not_the_page() -> None:
    agent = Agent(client=offline_model().async_client, model="m")
    with (
        running_server(create_app(agent, token="s3cret")) as url,
        httpx2.Client(base_url=url) as http,
    ):
        refused = http.post("/api/events", json={"prompt": "hi"})
        wrong = http.post(
            "/api/events", json={"prompt": "hi"}, headers={"authorization": "Bearer x"}
        )
        allowed = http.post(
            "/api/events", json={"prompt": "hi"}, headers={"authorization": "Bearer s3cret"}
        )
        page = http.get("/")
    assert (refused.status_code, wrong.status_code, allowed.status_code) == (401, 401, 200)
    assert page.status_code == 200


def test_keep_alive_comments_during_a_long_tool() -> None:
    model, gate = two_step_model(), Gate()
    app = create_app(slow_agent(model, gate), keep_alive=0.05)
    with running_server(app) as url, httpx2.Client(base_url=url, timeout=20) as http:
        comments = 0
        with http.stream("POST", "/api/chat", json=ui_chat_body("Paris?", "c-ka")) as response:
            for line in response.iter_lines():
                if line.startswith(": keep-alive"):
                    comments += 1
                    if comments == 3:
                        gate.release.set()
    assert comments >= 3


def test_the_page_and_its_files_are_served_with_a_strict_policy() -> None:
    agent = Agent(client=offline_model().async_client, model="m")
    with running_server(create_app(agent)) as url, httpx2.Client(base_url=url) as http:
        page = http.get("/")
        script = http.get("/static/app.js")
        style = http.get("/static/app.css")
        missing = http.get("/static/secret.py")
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'src="static/app.js"' in page.text
    assert "textContent" in script.text
    assert "innerHTML" not in script.text
    assert style.status_code == 200
    assert missing.status_code == 404


@pytest.mark.anyio
async def test_the_registry_is_bounded(anyio_backend: object) -> None:
    registry = RunRegistry(max_runs=1, keep_finished=0.0)
    first = registry.add("a")
    with pytest.raises(RegistryFull):
        registry.add("b")
    first.finished_at = 0.0  # finished long ago: forgotten on the next look
    assert registry.get("a") is None
    registry.add("b")
    assert len(registry) == 1


@pytest.mark.anyio
async def test_a_run_is_cancelled_when_the_client_disconnects(anyio_backend: object) -> None:
    """The bare ASGI app, without a server, on asyncio and trio."""
    started, cancelled = anyio.Event(), anyio.Event()

    @tool
    async def get_weather(location: str) -> str:
        """Get the weather in a city, forever.

        Args:
            location: The city.
        """
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        return ""

    agent = Agent(client=offline_model().async_client, model="m", tools=[get_weather])
    app = create_app(agent, registry=RunRegistry(reattach_grace=0.0))
    body = json.dumps(ui_chat_body("Weather in Paris?")).encode()
    sent: list[Message] = []
    asked = False

    async def receive() -> Message:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": body, "more_body": False}
        await started.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/chat",
        "raw_path": b"/api/chat",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    with anyio.fail_after(10):
        await app(scope, receive, send)
    text = b"".join(m.get("body", b"") for m in sent).decode()
    assert cancelled.is_set(), text[-1500:]
    text = b"".join(m.get("body", b"") for m in sent).decode()
    assert "tool-input-available" in text
    assert '"finish"' not in text


def test_the_cli_listens_on_loopback_unless_told_otherwise(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert web_main(["--host", "0.0.0.0"]) == 2
    assert cli_main(["web", "--host", "10.1.2.3"]) == 2  # through `python -m agentstream`
    assert "--allow-remote" in capsys.readouterr().err


def test_web_command_keeps_paused_runs_in_the_session_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agentstream.web
    from agentstream.stores import SQLiteStore

    ours = logging.getLogger("agentstream")  # the command sets up its logger: undone after
    for name in ("handlers", "level", "propagate"):
        monkeypatch.setattr(ours, name, getattr(ours, name))
    served: dict[str, Any] = {}

    def fake_serve(agent: Any, **options: Any) -> None:
        served.update(options)

    monkeypatch.setattr(agentstream.web, "serve", fake_serve)
    assert web_main(["--session", str(tmp_path / "web.db"), "--port", "0"], environ={}) == 0
    assert isinstance(served["store"], SQLiteStore)
    assert served["store"].path == tmp_path / "web.db"


def test_web_command_without_the_web_extra_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "agentstream.web", None)  # as if starlette were missing
    assert cli_main(["web", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agentstream web: web needs the web extra")
    assert "Traceback" not in err
