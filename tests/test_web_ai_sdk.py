"""The real `ai` npm package (the Vercel AI SDK) reads agentstream.web's UI message stream.

A session fixture installs `ai@7` once into a cache outside the repository
(`~/.cache/agentstream-tests/node`, or `$AGENTSTREAM_TEST_CACHE/node`); a Node script
then reads `POST /api/chat` with the package's `DefaultChatTransport` (what `useChat`
uses) and `readUIMessageStream`, reattaches with the transport's resume request, and
sends a second turn holding the conversation as the package assembled it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, NoReturn

import anyio
import httpx2
import pytest

from agentstream import Agent, tool
from agentstream.stores import SQLiteStore
from agentstream.testing import Reply, ScriptedModel, ToolCall, offline_model
from agentstream.web import create_app, demo_tools

from ._web import running_server

AI_MAJOR = 7
"""The major of `ai` whose UI message stream (`x-vercel-ai-ui-message-stream: v1`) we speak."""

SCRIPT = Path(__file__).with_name("web_ai_sdk.mjs")


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the AI SDK test: {reason}")
    pytest.skip(reason)


def _cache() -> Path:
    root = os.environ.get("AGENTSTREAM_TEST_CACHE") or Path.home() / ".cache" / "agentstream-tests"
    return Path(root) / "node"


def _installed_version(folder: Path) -> str | None:
    manifest = folder / "node_modules" / "ai" / "package.json"
    if not manifest.is_file():
        return None
    version: str = json.loads(manifest.read_text())["version"]
    return version


@pytest.fixture(scope="session")
def ai_package() -> Path:
    """A folder whose node_modules holds `ai@7`, installed there once and kept."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are needed to run the `ai` package (apt-get install nodejs npm)")
    folder = _cache()
    version = _installed_version(folder)
    if version is None or not version.startswith(f"{AI_MAJOR}."):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text('{"private": true, "type": "module"}\n')
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", f"ai@{AI_MAJOR}"],
            cwd=folder, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            _unavailable(f"npm install ai@{AI_MAJOR} failed: {done.stderr.strip()[-500:]}")
    return folder


def read_with_ai_package(folder: Path, url: str, prompt: str) -> dict[str, Any]:
    shutil.copy(SCRIPT, folder / SCRIPT.name)
    done = subprocess.run(
        ["node", SCRIPT.name, url, prompt],
        cwd=folder, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"the ai package's reader failed:\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_ai_package_assembles_our_stream(ai_package: Path) -> None:
    model = offline_model()
    agent = Agent(client=model.async_client, model="m", tools=demo_tools())
    with running_server(create_app(agent)) as url:
        read = read_with_ai_package(ai_package, url, "What's the weather in Paris and Tokyo?")
    version = read["version"]
    assert version.split(".")[0] == str(AI_MAJOR), (
        f"ai {version} is installed, but agentstream.web speaks the UI message stream of "
        f"ai {AI_MAJOR}.x: check that major's protocol (ui-message-chunks) and update "
        "agentstream/web/_ui_stream.py"
    )
    assert read["errors"] == [], f"ai {version} refused parts of our stream: {read['errors']}"
    message, types = read["first"]["message"], read["first"]["types"]
    assert types[0] == "start"
    assert types[-1] == "finish:stop"
    assert message["role"] == "assistant"
    tools = [part for part in message["parts"] if part["type"] == "tool-get_weather"]
    assert [tool["input"] for tool in tools] == [{"location": "Paris"}, {"location": "Tokyo"}]
    assert all(tool["state"] == "output-available" for tool in tools)
    assert ["Paris" in tools[0]["output"], "Tokyo" in tools[1]["output"]] == [True, True]
    texts = [part["text"] for part in message["parts"] if part["type"] == "text"]
    assert len(texts) == 1
    assert "Paris" in texts[0]
    assert "Tokyo" in texts[0]
    assert [part["type"] for part in message["parts"]].count("step-start") == 2
    assert any(part["type"] == "reasoning" for part in message["parts"])
    assert not any(part["type"].startswith("data-") for part in message["parts"])  # transient
    usage = message["metadata"]["usage"]
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"] > 0
    assert [step["step"] for step in message["metadata"]["steps"]] == [1, 2]
    # The resume request replays the run; a chat with no run answers 204 (null).
    assert read["resumed"]["message"]["parts"] == message["parts"]
    assert read["missingIsNull"] is True
    # The second turn carried the first answer's tool calls and results to the model.
    second = read["second"]
    assert second["types"][-1] == "finish:stop"
    oslo = [p for p in second["message"]["parts"] if p["type"] == "tool-get_weather"]
    assert [tool["input"] for tool in oslo] == [{"location": "Oslo"}]
    history = model.requests[-2].body["messages"]
    assert [m["role"] for m in history[:5]] == ["user", "assistant", "tool", "tool", "assistant"]
    assert history[2]["content"] == tools[0]["output"]


APPROVAL_SCRIPT = Path(__file__).with_name("web_ai_sdk_approval.mjs")


def drive_an_approval(
    folder: Path, first: str, then: str, chat_id: str, decision: str, reason: str = ""
) -> dict[str, Any]:
    """The `ai` package's chat through one approval: prompt, decision, continuation."""
    shutil.copy(APPROVAL_SCRIPT, folder / APPROVAL_SCRIPT.name)
    prompt = "Book a hotel in Rome for 2 nights"
    done = subprocess.run(
        ["node", APPROVAL_SCRIPT.name, first, then, chat_id, prompt, decision, reason],
        cwd=folder, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"the ai package's chat failed:\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    assert result["errors"] == [], f"the ai package refused our stream: {result['errors']}"
    assert result["status"] == "ready"
    return result


def _booking(message: dict[str, Any]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [p for p in message["parts"] if p["type"] == "tool-book_hotel"]
    assert len(parts) == 1
    return parts[0]


def _answer(message: dict[str, Any]) -> str:
    return "".join(p["text"] for p in message["parts"] if p["type"] == "text")


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_the_ai_package_chat_answers_an_approval_and_the_run_goes_on(
    ai_package: Path, decision: str
) -> None:
    model = offline_model()
    agent = Agent(client=model.async_client, model="m", tools=demo_tools())
    with running_server(create_app(agent)) as url:
        read = drive_an_approval(ai_package, url, url, "chat-approval", decision, "too pricey")
    paused = _booking(read["paused"][-1])
    assert paused["state"] == "approval-requested"
    assert paused["input"] == {"city": "Rome", "nights": 2}
    assert paused["approval"] == {"id": paused["toolCallId"]}
    # The package sent the decision on the tool part, in the message it continues ...
    sent = read["bodies"][1]["messages"][-1]
    assert _booking(sent)["state"] == "approval-responded"
    assert _booking(sent)["approval"]["approved"] is (decision == "approve")
    # ... and the continuation streamed into that same assistant message.
    assert len(read["messages"]) == 2
    final = read["messages"][-1]
    assert final["id"] == read["paused"][-1]["id"]
    booking = _booking(final)
    assert len(model.requests) == 2  # the paused step's request was not made again
    told = model.requests[-1].body["messages"][-1]
    assert told["role"] == "tool"
    if decision == "approve":
        assert booking["state"] == "output-available"
        assert booking["output"].startswith("booked 2 nights in Rome")
        assert told["content"] == booking["output"]
        assert booking["output"] in _answer(final)
    else:
        assert booking["state"] == "output-denied"
        assert "too pricey" in told["content"]
        assert "did not approve" in _answer(final)
    assert final["metadata"]["stopReason"] == "answer"


def test_an_approval_resumes_the_run_in_a_new_app_on_the_same_store(
    ai_package: Path, tmp_path: Path
) -> None:
    store_path = tmp_path / "chats.db"
    before, after = offline_model(), offline_model()
    first = create_app(
        Agent(client=before.async_client, model="m", tools=demo_tools()),
        store=SQLiteStore(store_path),
    )
    # A new app object (its own empty registry, its own model) on the same SQLite file:
    # what a restarted server has.
    second = create_app(
        Agent(client=after.async_client, model="m", tools=demo_tools()),
        store=SQLiteStore(store_path),
    )
    with running_server(first) as url_1, running_server(second) as url_2:
        read = drive_an_approval(ai_package, url_1, url_2, "chat-restart", "approve")
    booking = _booking(read["messages"][-1])
    assert booking["state"] == "output-available"
    assert booking["output"].startswith("booked 2 nights in Rome")
    assert [len(before.requests), len(after.requests)] == [1, 1]
    resumed = after.requests[0].body["messages"]
    assert [m["role"] for m in resumed] == ["user", "assistant", "tool"]
    assert resumed[-1]["content"] == booking["output"]
    assert booking["output"] in _answer(read["messages"][-1])


def test_the_ai_package_keeps_a_cancelled_call_and_sends_it_back(ai_package: Path) -> None:
    started = threading.Event()

    @tool
    async def search(query: str) -> str:
        """Search for a long time."""
        started.set()
        await anyio.sleep(3600)
        return "never"

    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("search", {"query": "q"}, id="call_s")]),
            Reply("Skipped the search."),
            Reply("Oslo: sunny."),
        ]
    )
    agent = Agent(client=model.async_client, model="m", tools=[search])
    answers: list[int] = []

    def cancel_when_started(url: str) -> None:
        if started.wait(60):
            with httpx2.Client(base_url=url, timeout=20) as http:
                body = {"toolCallId": "call_s", "reason": "not needed"}
                answers.append(http.post("/api/chat/node-chat/cancel", json=body).status_code)

    with running_server(create_app(agent)) as url:
        canceller = threading.Thread(target=cancel_when_started, args=(url,))
        canceller.start()
        read = read_with_ai_package(ai_package, url, "Search it")
        canceller.join(60)
    assert answers == [204]
    assert read["errors"] == []
    message = read["first"]["message"]
    assert "data-tool-cancelled" in read["first"]["types"]
    [cancelled] = [p for p in message["parts"] if p["type"] == "data-tool-cancelled"]
    assert cancelled["data"] == {"toolCallId": "call_s", "reason": "not needed"}
    [call] = [p for p in message["parts"] if p["type"] == "tool-search"]
    assert call["state"] == "output-available"
    assert call["output"].startswith("Cancelled by the user")
    # The second turn sent that message back as the package keeps it: the data part is
    # ignored, the call and its answer reach the model as they were.
    assert read["second"]["types"][-1] == "finish:stop"
    history = model.requests[-1].body["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant", "user"]
    assert history[2]["content"] == call["output"]
