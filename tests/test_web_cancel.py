"""`POST /api/chat/{id}/cancel`: one tool call cancelled over real HTTP, behind the guards."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import httpx2

from agentstream import Agent, tool
from agentstream.testing import Reply, ScriptedModel, ToolCall
from agentstream.web import RunRegistry, create_app

from ._web import parse_sse, running_server, ui_chat_body, ui_text

SECRET = {"x-agentstream-chat-secret": "the-holder"}
TOLD = "Cancelled by the user before the tool finished; there is no result."


class Slow:
    """A search that runs until cancelled, and a quick lookup."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.cancelled = threading.Event()

        @tool
        async def search(query: str) -> str:
            """Search for a long time."""
            self.started.set()
            try:
                await anyio.sleep(3600)
            except anyio.get_cancelled_exc_class():
                self.cancelled.set()
                raise
            return "never"

        @tool
        def lookup(key: str) -> str:
            """Look a key up."""
            return f"value of {key}"

        self.tools = [search, lookup]


def model() -> ScriptedModel:
    return ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("search", {"query": "q"}, id="call_search"),
                    ToolCall("lookup", {"key": "k"}, id="call_lookup"),
                ]
            ),
            Reply("Done without the search."),
        ]
    )


def test_the_cancel_request_cancels_one_call_and_the_run_goes_on() -> None:
    slow, scripted = Slow(), model()
    app = create_app(Agent(client=scripted.async_client, model="m", tools=slow.tools))
    with running_server(app) as url, httpx2.Client(base_url=url, timeout=20) as http:
        lines: list[str] = []
        answers: list[int] = []
        body = ui_chat_body("go", "c-cancel")
        with http.stream("POST", "/api/chat", json=body, headers=SECRET) as response:
            for line in response.iter_lines():
                lines.append(line)
                if slow.started.is_set() and not answers:
                    cancel = {"toolCallId": "call_search", "reason": "enough"}
                    answers.append(
                        http.post(
                            "/api/chat/c-cancel/cancel", json=cancel, headers=SECRET
                        ).status_code
                    )
        again = http.post(
            "/api/chat/c-cancel/cancel", json={"toolCallId": "call_search"}, headers=SECRET
        )
    assert answers == [204]
    assert slow.cancelled.is_set()
    assert again.status_code == 409  # the run has ended
    chunks = [f.json() for f in parse_sse("\n".join(lines) + "\n\n") if f.data and f.data[0] == "{"]
    data = [c for c in chunks if c["type"] == "data-tool-cancelled"]
    assert data == [
        {
            "type": "data-tool-cancelled",
            "id": "cancel-call_search",
            "data": {"toolCallId": "call_search", "reason": "enough"},
        }
    ]
    outputs = {c["toolCallId"]: c["output"] for c in chunks if c["type"] == "tool-output-available"}
    assert outputs == {"call_search": f"{TOLD} Reason: enough", "call_lookup": "value of k"}
    assert chunks.index(data[0]) < next(
        i for i, c in enumerate(chunks) if c.get("toolCallId") == "call_search"
        and c["type"] == "tool-output-available"
    )  # fmt: skip
    assert chunks[-1]["type"] == "finish"
    sent = scripted.requests[1].messages
    assert {m["tool_call_id"]: m["content"] for m in sent if m["role"] == "tool"} == outputs


def test_the_cancel_request_passes_the_same_guards_as_stop() -> None:
    slow, scripted = Slow(), model()
    app = create_app(
        Agent(client=scripted.async_client, model="m", tools=slow.tools),
        registry=RunRegistry(reattach_grace=30),
    )
    cancel = {"toolCallId": "call_search"}
    url_path = "/api/chat/held/cancel"
    with running_server(app) as url, httpx2.Client(base_url=url, timeout=20) as http:
        with http.stream(
            "POST", "/api/chat", json=ui_chat_body("go", "held"), headers=SECRET
        ) as response:
            for _ in response.iter_lines():
                if slow.started.is_set():
                    break
        attempts: dict[str, Any] = {
            "anonymous": http.post(url_path, json=cancel),
            "wrong-secret": http.post(
                url_path, json=cancel, headers={"x-agentstream-chat-secret": "a-guess"}
            ),
            "other-site": http.post(
                url_path, json=cancel, headers={**SECRET, "origin": "https://evil.example"}
            ),
            "not-json": http.post(
                url_path,
                content=b'{"toolCallId": "call_search"}',
                headers={**SECRET, "content-type": "text/plain"},
            ),
            "no-id": http.post(url_path, json={}, headers=SECRET),
            "long-reason": http.post(
                url_path, json={**cancel, "reason": "x" * 5000}, headers=SECRET
            ),
            "unknown-call": http.post(url_path, json={"toolCallId": "nope"}, headers=SECRET),
            "unknown-run": http.post("/api/chat/nobody/cancel", json=cancel, headers=SECRET),
        }
        still_running = not slow.cancelled.is_set()
        done = http.post(url_path, json=cancel, headers=SECRET)
        assert slow.cancelled.wait(10)
        whole = http.get("/api/chat/held/stream", headers=SECRET)
    assert {name: r.status_code for name, r in attempts.items()} == {
        "anonymous": 403,
        "wrong-secret": 403,
        "other-site": 403,
        "not-json": 415,
        "no-id": 400,
        "long-reason": 400,
        "unknown-call": 409,
        "unknown-run": 404,
    }
    for response in attempts.values():
        assert "Traceback" not in response.text
        assert "nope" not in response.text  # nothing of the request is echoed
    assert still_running
    assert done.status_code == 204
    assert "data-tool-cancelled" in whole.text
    assert "Done without the search." in ui_text(whole.text)
