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
from pathlib import Path
from typing import Any, NoReturn

import pytest

from agentstream import Agent
from agentstream.testing import offline_model
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
