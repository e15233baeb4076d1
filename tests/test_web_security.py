"""The web app's defences over real HTTP (uvicorn on loopback): each attack of issue 22.

Finding 1: other sites and rebound host names cannot act (Host, Origin, JSON bodies).
Finding 3: a chat id that cannot be a header value is refused before anything is kept.
The rest: a chat's run is acted on only by the client that holds it; the defaults hold
in an app mounted in FastAPI; the web command refuses to serve the network unguarded.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import httpx2
import pytest

from agentstream import Agent, tool
from agentstream.cli._web import main as web_main
from agentstream.testing import Reply, ScriptedModel, ToolCall
from agentstream.web import RunRegistry, create_app

from ._web import parse_sse, running_server, ui_chat_body

SECRET = {"x-agentstream-chat-secret": "the-holders-secret"}


class Launches:
    """A tool that must not run unless asked properly: counts its runs, can be held."""

    def __init__(self) -> None:
        self.count = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.cancelled = threading.Event()

    def agent(self, replies: int = 20) -> Agent:
        @tool
        async def launch(target: str) -> str:
            """Launch something (it must never run on a hostile request).

            Args:
                target: What to launch.
            """
            self.count += 1
            self.started.set()
            try:
                while not self.release.is_set():
                    await anyio.sleep(0.01)
            except anyio.get_cancelled_exc_class():
                self.cancelled.set()
                raise
            return f"launched {target}"

        script = [
            step
            for _ in range(replies)
            for step in (Reply(tool_calls=[ToolCall("launch", {"target": "x"})]), Reply("ok"))
        ]
        return Agent(client=ScriptedModel(script).async_client, model="m", tools=[launch])


def _body(chat_id: Any = "victim") -> bytes:
    import json

    return json.dumps(ui_chat_body("launch it", chat_id)).encode()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({"content-type": "text/plain"}, 415, id="text-plain-no-cors"),
        pytest.param({"content-type": "application/x-www-form-urlencoded"}, 415, id="form"),
        pytest.param({}, 415, id="no-content-type"),
        pytest.param(
            {"content-type": "application/json", "origin": "http://evil.example"},
            403,
            id="cross-origin",
        ),
        pytest.param({"content-type": "text/plain", "origin": "null"}, 403, id="sandboxed-origin"),
        pytest.param(
            {"content-type": "application/json", "host": "evil.example:8000"},
            403,
            id="dns-rebinding-host",
        ),
        pytest.param(
            {
                "content-type": "application/json",
                "host": "evil.example:8000",
                "origin": "http://evil.example:8000",
            },
            403,
            id="dns-rebinding-same-origin",
        ),
        pytest.param(
            {"content-type": "application/json", "sec-fetch-site": "cross-site"},
            403,
            id="cross-site-fetch",
        ),
    ],
)
def test_requests_another_site_can_make_never_run_a_tool(
    headers: dict[str, str], status: int
) -> None:
    launches = Launches()
    launches.release.set()
    with running_server(create_app(launches.agent())) as url, httpx2.Client(base_url=url) as http:
        refused = http.post("/api/chat", content=_body(), headers=headers)
        events = http.post("/api/events", content=b'{"prompt": "launch"}', headers=headers)
        stream = http.get("/api/chat/victim/stream", headers=headers)
        stop = http.post("/api/chat/victim/stop", content=b"{}", headers=headers)
        # The same request as a browser on the app's own page sends it: it runs.
        port = url.rsplit(":", 1)[1]
        own = {"content-type": "application/json", "origin": f"http://localhost:{port}"}
        allowed = http.post(
            "/api/chat", content=_body(), headers={**own, "host": f"localhost:{port}"}
        )
    assert (refused.status_code, events.status_code) == (status, status)
    assert stop.status_code in (403, 415)
    if "host" in headers or "origin" in headers or "sec-fetch-site" in headers:
        assert stream.status_code == 403
    assert set(refused.json()) == {"error"}
    assert "evil" not in refused.text  # nothing of the request is echoed
    assert allowed.status_code == 200
    assert launches.count == 1  # only the app's own request ran it


def test_listed_hosts_and_origins_are_let_in_and_loopback_names_on_any_port() -> None:
    launches = Launches()
    launches.release.set()
    app = create_app(
        launches.agent(),
        allowed_hosts=["agent.lan", "box:8443"],
        allowed_origins=["http://localhost:3000"],
    )
    json_type = {"content-type": "application/json"}
    with running_server(app) as url, httpx2.Client(base_url=url) as http:
        statuses = {
            host: http.get("/", headers={"host": host}).status_code
            for host in ("agent.lan:9", "box:8443", "box:8444", "[::1]:1", "localhost", "evil")
        }
        dev = http.post(
            "/api/events",
            content=b'{"prompt": "hi"}',
            headers={**json_type, "origin": "http://localhost:3000"},
        )
        other = http.post(
            "/api/events",
            content=b'{"prompt": "hi"}',
            headers={**json_type, "origin": "http://localhost:3001"},
        )
    assert statuses == {
        "agent.lan:9": 200,
        "box:8443": 200,
        "box:8444": 403,
        "[::1]:1": 200,
        "localhost": 200,
        "evil": 403,
    }
    assert (dev.status_code, other.status_code) == (200, 403)


@pytest.mark.parametrize(
    "chat_id",
    [
        pytest.param("a\nb", id="newline"),
        pytest.param("a\r\nx-evil: 1", id="crlf"),
        pytest.param("café", id="non-ascii"),
        pytest.param("x" * 129, id="too-long"),
        pytest.param("", id="empty"),
        pytest.param(7, id="not-text"),
        pytest.param("a/b", id="slash"),
    ],
)
def test_a_chat_id_that_cannot_be_a_header_is_refused_before_it_is_kept(chat_id: Any) -> None:
    launches = Launches()
    launches.release.set()
    registry = RunRegistry(max_runs=3)
    json_type = {"content-type": "application/json"}
    with (
        running_server(create_app(launches.agent(), registry=registry)) as url,
        httpx2.Client(base_url=url) as http,
    ):
        refused = [
            http.post("/api/chat", content=_body(chat_id), headers=json_type) for _ in range(5)
        ]
        kept = len(registry)
        good = http.post("/api/chat", content=_body("fine-id"), headers=json_type)
    assert {r.status_code for r in refused} == {400}
    assert all("Traceback" not in r.text for r in refused)
    assert kept == 0  # before the fix: one leaked run per request, then 503 for everyone
    assert good.status_code == 200
    assert launches.count == 1


def test_a_bad_chat_id_does_not_lose_a_paused_approval() -> None:
    @tool(needs_approval=True)
    async def book(city: str) -> str:
        """Book a room.

        Args:
            city: The city.
        """
        return f"booked in {city}"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("book", {"city": "Rome"})]), Reply("Done.")])
    agent = Agent(client=model.async_client, model="m", tools=[book])
    json_type = {"content-type": "application/json"}
    with running_server(create_app(agent)) as url, httpx2.Client(base_url=url, timeout=20) as http:
        first = http.post("/api/chat", json=ui_chat_body("Book Rome", "trip"))
        chunks = [f.json() for f in parse_sse(first.text) if f.data and f.data != "[DONE]"]
        request = next(c for c in chunks if c["type"] == "tool-approval-request")
        start = next(c for c in chunks if c["type"] == "start")
        user = ui_chat_body("Book Rome", "trip")["messages"][0]
        answer = {
            "id": start["messageId"],
            "role": "assistant",
            "parts": [
                {
                    "type": "tool-book",
                    "toolCallId": request["toolCallId"],
                    "state": "approval-responded",
                    "input": {"city": "Rome"},
                    "approval": {"id": request["approvalId"], "approved": True},
                }
            ],
        }
        import json

        bad = {"id": "trip\n", "messages": [user, answer]}
        refused = http.post("/api/chat", content=json.dumps(bad).encode(), headers=json_type)
        good = http.post("/api/chat", json={"id": "trip", "messages": [user, answer]})
    assert refused.status_code == 400
    assert good.status_code == 200
    outputs = [
        f.json()["output"]
        for f in parse_sse(good.text)
        if f.data and '"tool-output-available"' in f.data
    ]
    assert outputs == ["booked in Rome"]


def test_only_the_client_holding_a_chat_can_stop_replace_or_read_its_run() -> None:
    launches = Launches()
    app = create_app(launches.agent(), registry=RunRegistry(reattach_grace=30))
    wrong = {"x-agentstream-chat-secret": "a-guess"}
    with running_server(app) as url, httpx2.Client(base_url=url, timeout=20) as http:
        with http.stream(
            "POST", "/api/chat", json=ui_chat_body("launch it", "held"), headers=SECRET
        ) as response:
            for _ in response.iter_lines():
                if launches.started.is_set():
                    break
        attempts = {
            "stop-anonymous": http.post("/api/chat/held/stop", json={}),
            "stop-wrong": http.post("/api/chat/held/stop", json={}, headers=wrong),
            "replace": http.post("/api/chat", json=ui_chat_body("mine now", "held")),
            "replace-wrong": http.post(
                "/api/chat", json=ui_chat_body("mine now", "held"), headers=wrong
            ),
            "read": http.get("/api/chat/held/stream"),
        }
        still_running = not launches.cancelled.is_set()
        stopped = http.post("/api/chat/held/stop", json={}, headers=SECRET)
    assert {name: r.status_code for name, r in attempts.items()} == dict.fromkeys(attempts, 403)
    assert still_running
    assert launches.count == 1  # no replacement run started
    assert stopped.status_code == 204
    assert launches.cancelled.wait(10)


def test_a_fastapi_app_that_mounts_it_keeps_the_defences() -> None:
    from fastapi import FastAPI

    launches = Launches()
    launches.release.set()
    api = FastAPI()
    api.mount("/agent", create_app(launches.agent()))
    with running_server(api) as url, httpx2.Client(base_url=url) as http:
        plain = http.post(
            "/agent/api/chat", content=_body(), headers={"content-type": "text/plain"}
        )
        rebound = http.post(
            "/agent/api/chat", json=ui_chat_body("x"), headers={"host": "evil.example"}
        )
        other = http.post(
            "/agent/api/chat", json=ui_chat_body("x"), headers={"origin": "http://a.b"}
        )
        deep = http.post(
            "/agent/api/chat",
            content=b"[" * 100_000,
            headers={"content-type": "application/json"},
        )
        own = http.post("/agent/api/chat", json=ui_chat_body("launch it", "fine"))
    assert (plain.status_code, rebound.status_code, other.status_code) == (415, 403, 403)
    assert deep.status_code == 400
    assert own.status_code == 200
    assert launches.count == 1


def test_the_web_command_never_serves_the_network_without_a_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    import agentstream.web

    ours = logging.getLogger("agentstream")  # the command sets up its logger: undone after
    for name in ("handlers", "level", "propagate"):
        monkeypatch.setattr(ours, name, getattr(ours, name))
    served: list[dict[str, Any]] = []
    monkeypatch.setattr(agentstream.web, "serve", lambda agent, **options: served.append(options))
    argv = ["--host", "0.0.0.0", "--allow-remote", "--allow-host", "box.lan", "--port", "0"]
    assert web_main(argv, environ={}) == 0
    err = capsys.readouterr().err
    token = served[0]["token"]
    assert token
    assert len(token) >= 24
    assert err.count(token) == 1  # printed once, in the address to open
    assert served[0]["allowed_hosts"] == ["box.lan"]
    assert web_main([*argv, "--token", "chosen-token"], environ={}) == 0
    assert served[1]["token"] == "chosen-token"
