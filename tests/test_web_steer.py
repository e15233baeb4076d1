"""Steering a run from the web: `POST /api/chat/{id}/steer` over real HTTP (uvicorn on
loopback) behind the same guards as the other endpoints, the `data-steer` parts, the UI
messages read back, and the page in a real headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from agentstream import Agent, tool
from agentstream.testing import ModelRequest, Reply, ScriptedModel, ToolCall
from agentstream.web import RunRegistry, create_app
from agentstream.web._messages import to_openai

from ._web import parse_sse, running_server, ui_chat_body
from .test_web_ai_sdk import ai_package  # noqa: F401 (a fixture)
from .test_web_browser import WAIT, ask, browser, page, shot  # noqa: F401 (fixtures)

SECRET = {"x-agentstream-chat-secret": "the-holders-secret"}


class Held:
    """An agent whose tool `hold` runs until released; the model echoes the last user text."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

        @tool
        async def hold() -> str:
            """Hold until released."""
            self.started.set()
            with anyio.fail_after(30):
                while not self.release.is_set():
                    await anyio.sleep(0.01)
            return "held"

        def policy(request: ModelRequest) -> Reply:
            messages = request.messages
            if not any(message["role"] == "tool" for message in messages):
                return Reply(tool_calls=[ToolCall("hold", {})])
            return Reply(f"You said: {messages[-1]['content']}")

        self.model = ScriptedModel(policy)
        self.agent = Agent(client=self.model.async_client, model="m", tools=[hold])


def start_held(http: httpx2.Client, held: Held, chat: str = "c1") -> None:
    """Start the chat's run and leave its stream once the tool is running."""
    with http.stream("POST", "/api/chat", json=ui_chat_body("go", chat), headers=SECRET) as r:
        for _ in r.iter_lines():
            if held.started.is_set():
                break


def parts_of(text: str) -> list[dict[str, Any]]:
    return [frame.json() for frame in parse_sse(text) if frame.data and frame.data != "[DONE]"]


def test_a_message_steers_the_running_chat_and_is_delivered_after_the_tool() -> None:
    held = Held()
    app = create_app(held.agent, registry=RunRegistry(reattach_grace=30))
    with running_server(app) as url, httpx2.Client(base_url=url, timeout=20) as http:
        start_held(http, held)
        sent = http.post("/api/chat/c1/steer", json={"text": "Also Paris."}, headers=SECRET)
        held.release.set()
        rest = http.get("/api/chat/c1/stream", headers=SECRET)
        late = http.post("/api/chat/c1/steer", json={"text": "Too late."}, headers=SECRET)

    assert sent.status_code == 200
    message_id = sent.json()["id"]
    steers = [part for part in parts_of(rest.text) if part["type"] == "data-steer"]
    assert [part["data"]["status"] for part in steers] == ["queued", "delivered"]
    assert {part["id"] for part in steers} == {f"steer-{message_id}"}
    assert steers[1]["data"] == {"status": "delivered", "text": "Also Paris.", "step": 2}
    second = held.model.requests[1].messages
    assert [m["role"] for m in second[-3:]] == ["assistant", "tool", "user"]
    assert second[-1]["content"] == "Also Paris."
    assert late.status_code == 409


def test_a_run_of_the_json_events_api_is_steered_by_its_key() -> None:
    held = Held()
    app = create_app(held.agent, registry=RunRegistry(reattach_grace=30))
    with running_server(app) as url, httpx2.Client(base_url=url, timeout=20) as http:
        with http.stream("POST", "/api/events", json={"prompt": "go"}) as response:
            key = response.headers["x-agentstream-run"]
            for _ in response.iter_lines():
                if held.started.is_set():
                    break
        sent = http.post(f"/api/events/{key}/steer", json={"text": "Also Paris."})
        held.release.set()
        rest = http.get(f"/api/events/{key}")
    assert sent.status_code == 200
    kinds = [(e["type"], e.get("step")) for e in parts_of(rest.text) if "message" in e["type"]]
    assert kinds == [("message_queued", 1), ("message_delivered", 2)]
    assert held.model.requests[1].messages[-1] == {"role": "user", "content": "Also Paris."}


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        pytest.param({**SECRET, "origin": "http://evil.example"}, {"text": "x"}, 403, id="origin"),
        pytest.param({**SECRET, "content-type": "text/plain"}, {"text": "x"}, 415, id="not-json"),
        pytest.param({"x-agentstream-chat-secret": "a-guess"}, {"text": "x"}, 403, id="not-holder"),
        pytest.param(SECRET, {"text": ""}, 400, id="empty-text"),
        pytest.param(SECRET, {"message": "x"}, 400, id="no-text"),
    ],
)
def test_a_steer_that_fails_a_guard_is_refused_and_never_reaches_the_run(
    headers: dict[str, str], body: dict[str, Any], status: int
) -> None:
    held = Held()
    app = create_app(held.agent, registry=RunRegistry(reattach_grace=30))
    with running_server(app) as url, httpx2.Client(base_url=url, timeout=20) as http:
        start_held(http, held)
        sent = {"content-type": "application/json", **headers}
        refused = http.post("/api/chat/c1/steer", content=json.dumps(body), headers=sent)
        unknown = http.post("/api/chat/nobody/steer", json={"text": "x"}, headers=SECRET)
        held.release.set()
        http.get("/api/chat/c1/stream", headers=SECRET)

    assert refused.status_code == status
    assert set(refused.json()) == {"error"}
    assert "evil" not in refused.text
    assert unknown.status_code == 404
    assert all(m["role"] != "user" for m in held.model.requests[-1].messages[1:])


def test_with_a_token_a_steer_needs_it() -> None:
    held = Held()
    held.release.set()
    app = create_app(held.agent, token="t0k")
    with running_server(app) as url, httpx2.Client(base_url=url, timeout=20) as http:
        refused = http.post("/api/chat/c1/steer", json={"text": "x"})
    assert refused.status_code == 401


def test_a_delivered_steer_part_reads_back_as_a_user_message_after_its_step() -> None:
    step = {"type": "step-start"}
    call = {"type": "tool-hold", "toolCallId": "c1", "state": "output-available", "input": {}}
    ui = [
        {"role": "user", "parts": [{"type": "text", "text": "go"}]},
        {
            "role": "assistant",
            "parts": [
                step,
                {**call, "output": "held"},
                {"type": "data-steer", "id": "s1", "data": {"status": "delivered", "text": "Also"}},
                {"type": "data-steer", "id": "s2", "data": {"status": "queued", "text": "Never"}},
                step,
                {"type": "text", "text": "Done."},
            ],
        },
    ]
    messages = to_openai(ui)
    assert [(m["role"], m.get("content")) for m in messages] == [
        ("user", "go"),
        ("assistant", None),
        ("tool", "held"),
        ("user", "Also"),
        ("assistant", "Done."),
    ]


def test_typing_while_a_run_streams_steers_it_and_shows_where_it_was_read(page: Any) -> None:  # noqa: F811
    held = Held()
    with running_server(create_app(held.agent)) as url:
        page.goto(url + "/")
        ask(page, "go")
        page.wait_for_selector(".tool.running", timeout=WAIT)
        assert page.locator("#send").inner_text() == "Steer"
        ask(page, "Also Paris.")
        page.wait_for_selector(".steer", timeout=WAIT)
        assert "queued" in page.locator(".steer .state").inner_text()
        shot(page, "13-steer-queued")
        held.release.set()
        page.wait_for_selector(".steer.delivered", timeout=WAIT)
        page.wait_for_selector(".run-metrics", timeout=WAIT)
        shot(page, "14-steer-delivered")
        assert page.locator(".steer .state").inner_text() == "read before step 2"
        # It sits between the tool's step and the step that read it.
        order = page.eval_on_selector_all(
            ".message.assistant > .step, .message.assistant > .steer",
            "nodes => nodes.map(n => n.className)",
        )
        assert order == ["step", "steer delivered", "step"]
        assert page.locator(".step .text").last.inner_text() == "You said: Also Paris."
        assert page.locator(".message.assistant").count() == 1
        assert page.locator("#send").inner_text() == "Send"
        # The next turn sends the steered message back in its place.
        ask(page, "Thanks")
        page.wait_for_selector(".run-metrics >> nth=1", timeout=WAIT)
    told = [(m["role"], m["content"]) for m in held.model.requests[-1].messages]
    assert ("user", "Also Paris.") in told
    assert told.index(("user", "Also Paris.")) < told.index(("user", "Thanks"))


STEER_SCRIPT = Path(__file__).with_name("web_ai_sdk_steer.mjs")


def test_the_ai_package_keeps_the_steer_part_and_sends_it_back_in_place(
    ai_package: Path,  # noqa: F811
) -> None:
    held = Held()
    app = create_app(held.agent, registry=RunRegistry(reattach_grace=30))
    with running_server(app) as url, httpx2.Client(base_url=url, timeout=20) as http:
        with http.stream("POST", "/api/chat", json=ui_chat_body("go", "node-steer")) as r:
            for _ in r.iter_lines():
                if held.started.is_set():
                    break
        sent = http.post("/api/chat/node-steer/steer", json={"text": "Also Paris."})
        held.release.set()
        http.get("/api/chat/node-steer/stream")  # to its end
        shutil.copy(STEER_SCRIPT, ai_package / STEER_SCRIPT.name)
        done = subprocess.run(
            ["node", STEER_SCRIPT.name, url, "node-steer"],
            cwd=ai_package, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert sent.status_code == 200
    assert done.returncode == 0, f"the ai package's reader failed:\n{done.stderr[-3000:]}"
    read = json.loads(done.stdout)
    assert read["errors"] == []
    steers = [part for part in read["replayed"]["parts"] if part["type"] == "data-steer"]
    assert len(steers) == 1  # updated in place, by its id
    assert steers[0]["data"] == {"status": "delivered", "text": "Also Paris.", "step": 2}
    told = [(m["role"], m["content"]) for m in held.model.requests[-1].messages]
    assert told[-5:] == [
        ("assistant", None),
        ("tool", "held"),
        ("user", "Also Paris."),
        ("assistant", "You said: Also Paris."),
        ("user", "Thanks"),
    ]
