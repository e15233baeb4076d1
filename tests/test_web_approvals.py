"""Approvals over HTTP: a paused run is resumed by the decisions `useChat` sends.

The bodies are those the real `ai` package sends (`tests/test_web_ai_sdk.py` drives the
package itself): the conversation with the paused assistant message last, its tool part
in the `approval-responded` state with `approval: {id, approved, reason}`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from agentstream import Agent, Approval
from agentstream.stores import SQLiteStore
from agentstream.testing import offline_model
from agentstream.web import MessageError, approvals_of, create_app, demo_tools, to_openai

from ._web import parse_sse, running_server, ui_chat_body

BOOK = "Book a hotel in Rome for 2 nights"


def _chunks(text: str) -> list[dict[str, Any]]:
    return [f.json() for f in parse_sse(text) if f.data is not None and f.data != "[DONE]"]


def _decided(body: dict[str, Any], first: list[dict[str, Any]], **approval: Any) -> dict[str, Any]:
    """The next request as `useChat` sends it after `addToolApprovalResponse`."""
    [request] = [c for c in first if c["type"] == "tool-approval-request"]
    [ready] = [c for c in first if c["type"] == "tool-input-available"]
    part = {
        "type": f"tool-{ready['toolName']}", "toolCallId": request["toolCallId"],
        "state": "approval-responded", "input": ready["input"],
        "approval": {"id": request["approvalId"], **approval},
    }  # fmt: skip
    paused = {
        "id": first[0]["messageId"],
        "role": "assistant",
        "parts": [{"type": "step-start"}, part],
    }
    messages = [*body["messages"], paused]
    return {
        "id": body["id"],
        "messages": messages,
        "trigger": "submit-message",
        "messageId": paused["id"],
    }


def _agent(model: Any) -> Agent:
    return Agent(client=model.async_client, model="m", tools=demo_tools())


def test_a_paused_run_is_resumed_into_the_same_message() -> None:
    model = offline_model()
    with running_server(create_app(_agent(model))) as url, httpx2.Client(base_url=url) as http:
        body = ui_chat_body(BOOK)
        first = _chunks(http.post("/api/chat", json=body).text)
        assert [c["type"] for c in first[-2:]] == ["tool-approval-request", "finish"]
        assert first[-2]["approvalId"] == first[-2]["toolCallId"]
        assert first[-1]["finishReason"] == "tool-calls"
        assert first[-1]["messageMetadata"]["stopReason"] == "approval_required"
        then = _chunks(http.post("/api/chat", json=_decided(body, first, approved=True)).text)
    assert then[0] == {**then[0], "type": "start", "messageId": first[0]["messageId"]}
    [output] = [c for c in then if c["type"] == "tool-output-available"]
    assert output["toolCallId"] == first[-2]["toolCallId"]
    assert output["output"].startswith("booked 2 nights in Rome")
    answer = "".join(c["delta"] for c in then if c["type"] == "text-delta")
    assert output["output"] in answer
    assert then[-1]["finishReason"] == "stop"
    assert len(model.requests) == 2


def test_a_denial_reaches_the_model_with_its_reason() -> None:
    model = offline_model()
    with running_server(create_app(_agent(model))) as url, httpx2.Client(base_url=url) as http:
        body = ui_chat_body(BOOK)
        first = _chunks(http.post("/api/chat", json=body).text)
        decided = _decided(body, first, approved=False, reason="over budget")
        then = _chunks(http.post("/api/chat", json=decided).text)
    assert {"type": "tool-output-denied", "toolCallId": first[-2]["toolCallId"]} in then
    assert not any(c["type"] == "tool-output-available" for c in then)
    told = model.requests[-1].body["messages"][-1]
    assert told == {**told, "role": "tool", "tool_call_id": first[-2]["toolCallId"]}
    assert "over budget" in told["content"]


def test_decisions_without_a_paused_run_or_for_another_call_are_refused() -> None:
    model = offline_model()
    with running_server(create_app(_agent(model))) as url, httpx2.Client(base_url=url) as http:
        body = ui_chat_body(BOOK)
        first = _chunks(http.post("/api/chat", json=body).text)
        elsewhere = {**_decided(body, first, approved=True), "id": "another-chat"}
        assert http.post("/api/chat", json=elsewhere).status_code == 409
        wrong = _decided(body, first, approved=True)
        wrong["messages"][-1]["parts"][-1]["approval"]["id"] = "call_other"
        refused = http.post("/api/chat", json=wrong)
        assert refused.status_code == 409
        assert "call_other" in refused.json()["error"]
        # A new user message instead of a decision: the paused run is forgotten.
        follow_up = {"id": "u2", "role": "user", "parts": [{"type": "text", "text": "Hello"}]}
        moved_on = {
            **body,
            "messages": [*_decided(body, first, approved=True)["messages"], follow_up],
        }
        moved_on["messages"][-2]["parts"][-1]["state"] = "approval-requested"
        assert http.post("/api/chat", json=moved_on).status_code == 200
        late = http.post("/api/chat", json=_decided(body, first, approved=True))
        assert late.status_code == 409
    assert not any("reference H" in str(r.body) for r in model.requests)  # never booked


def test_a_new_app_on_the_same_store_resumes_the_paused_run(tmp_path: Path) -> None:
    path = tmp_path / "chats.db"
    before, after = offline_model(), offline_model()
    body = ui_chat_body(BOOK)
    with running_server(create_app(_agent(before), store=SQLiteStore(path))) as url:
        first = _chunks(httpx2.post(url + "/api/chat", json=body).text)
    # The first server is gone; a new app (empty registry) on the same file takes over.
    with running_server(create_app(_agent(after), store=SQLiteStore(path))) as url:
        then = _chunks(
            httpx2.post(url + "/api/chat", json=_decided(body, first, approved=True)).text
        )
        again = httpx2.post(url + "/api/chat", json=_decided(body, first, approved=True))
    assert any(c["type"] == "tool-output-available" for c in then)
    assert then[-1]["finishReason"] == "stop"
    assert [len(before.requests), len(after.requests)] == [1, 1]
    assert again.status_code == 409  # resumed once: the checkpoint is gone
    # Without a store, a new app cannot know the run.
    with running_server(create_app(_agent(offline_model()))) as url:
        assert (
            httpx2.post(url + "/api/chat", json=_decided(body, first, approved=True)).status_code
            == 409
        )


def test_approvals_are_read_from_the_last_assistant_message() -> None:
    def part(state: str, **approval: Any) -> dict[str, Any]:
        return {
            "type": "tool-x",
            "toolCallId": "c1",
            "state": state,
            "input": {},
            "approval": approval,
        }

    user = {"id": "u", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
    yes = {
        "id": "a",
        "role": "assistant",
        "parts": [part("approval-responded", id="c1", approved=True)],
    }
    denied = part("approval-responded", id="c1", approved=False, reason=" too much ")
    no = {"id": "a", "role": "assistant", "parts": [denied]}
    assert approvals_of([user, yes]) == {"c1": Approval(True)}
    assert approvals_of([user, no]) == {"c1": Approval(False, " too much ")}
    assert approvals_of([user, yes, user]) == {}  # a new turn
    asked = {"id": "a", "role": "assistant", "parts": [part("approval-requested", id="c1")]}
    assert approvals_of([user, asked]) == {}
    with pytest.raises(MessageError):
        approvals_of([user, {**yes, "parts": [part("approval-responded", id="c1")]}])
    # As history, a denied call is a tool message saying so; an approved one not yet run
    # is answered with the note for calls without output.
    assert to_openai([user, no])[-1]["content"] == "not run: the user denied this call"
    assert to_openai([user, yes])[-1]["content"].startswith("not run:")


async def _post_both(urls: list[str], body: dict[str, Any]) -> list[httpx2.Response]:
    answers: list[httpx2.Response] = []

    async def post(url: str) -> None:
        async with httpx2.AsyncClient(timeout=30) as http:
            answers.append(await http.post(url + "/api/chat", json=body))

    async with anyio.create_task_group() as group:
        for url in urls:
            group.start_soon(post, url)
    return answers


def _resumed_once(answers: list[httpx2.Response]) -> None:
    """One answer ran the tool and finished; the other was refused, having run nothing."""
    assert sorted(answer.status_code for answer in answers) == [200, 409]
    [ran] = [answer for answer in answers if answer.status_code == 200]
    outputs = [c for c in _chunks(ran.text) if c["type"] == "tool-output-available"]
    assert len(outputs) == 1


@pytest.mark.parametrize("servers", [1, 2], ids=["one-server", "two-servers-one-store"])
def test_a_doubled_decision_resumes_the_run_once(tmp_path: Path, servers: int) -> None:
    path = tmp_path / "chats.db"
    for trial in range(20):
        models = [offline_model() for _ in range(servers)]
        apps = [create_app(_agent(model), store=SQLiteStore(path)) for model in models]
        body = ui_chat_body(BOOK, chat_id=f"chat-{trial}")
        with contextlib.ExitStack() as stack:
            urls = [stack.enter_context(running_server(app)) for app in apps]
            first = _chunks(httpx2.post(urls[0] + "/api/chat", json=body).text)
            decided = _decided(body, first, approved=True)
            answers = anyio.run(_post_both, urls * (3 - servers), decided)
        _resumed_once(answers)
        assert sum(len(model.requests) for model in models) == 2, trial  # the pause, one resume
