"""A durable chat's next turn sends the model what a live chat's would, on both wires.

The scripted model streams reasoning before each answer and before a tool call; the page
cannot hold what must go back (reasoning fields, items), so a live chat keeps it on the
server and a durable chat gets it from the chat's previous run. The same two turns go to
a live `python -m agentstream web` server and to a `--durable` one (SQLite): the second
turn's request bodies are equal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

pytest.importorskip("dbos", reason="the dbos extra is not installed (pip install -e '.[dbos]')")
pytest.importorskip("starlette", reason="the web extra is not installed")

from agentstream.testing import ModelRequest, Reply, ScriptedModel, ToolCall, serve

from .test_dbos import _free_port, kill
from .test_web_durable import up
from .test_web_durable_control import TOOLS

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


def thinking(request: ModelRequest) -> Reply:
    """A tool call on the first turn, then answers; reasoning before each."""
    users = sum(1 for m in request.messages if m["role"] == "user")
    last = request.messages[-1]["role"]
    if users == 1 and last == "user":
        call = ToolCall("record", {"topic": "tea"}, id="call-1")
        return Reply(tool_calls=[call], reasoning="I should record the topic first.")
    return Reply(f"Answer {users}.", reasoning=f"Thinking about turn {users}.")


def server(wire: str, model_port: int, port: int, tmp: Path, durable: bool) -> Any:
    command = [
        sys.executable, "-m", "agentstream", "web", "--port", str(port), "--api", wire,
        "--base-url", f"http://127.0.0.1:{model_port}/v1", "--api-key", "k", "--model", "m",
        "--tools", str(TOOLS),
    ]  # fmt: skip
    if durable:
        command += ["--durable", str(tmp / "runs.db")]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LEDGER": str(tmp / "ledger")}
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
    )


def assistant_of(body: str) -> dict[str, Any]:
    """The assistant UI message a client builds from a UI message stream (as `useChat`)."""
    from ._web import parse_sse

    parts: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for frame in parse_sse(body):
        if frame.data in (None, "[DONE]"):
            continue
        chunk = frame.json()
        kind = chunk["type"]
        if kind in ("text-start", "reasoning-start"):
            by_id[chunk["id"]] = {"type": kind.split("-")[0], "text": ""}
            parts.append(by_id[chunk["id"]])
        elif kind in ("text-delta", "reasoning-delta"):
            by_id[chunk["id"]]["text"] += chunk["delta"]
        elif kind == "tool-input-available":
            by_id[chunk["toolCallId"]] = part = {
                "type": "tool-" + chunk["toolName"], "toolCallId": chunk["toolCallId"],
                "state": "input-available", "input": chunk["input"],
            }  # fmt: skip
            parts.append(part)
        elif kind == "tool-output-available":
            by_id[chunk["toolCallId"]].update(state="output-available", output=chunk["output"])
    return {"id": "a1", "role": "assistant", "parts": parts}


def user(number: int, text: str) -> dict[str, Any]:
    return {"id": f"u{number}", "role": "user", "parts": [{"type": "text", "text": text}]}


async def two_turns(wire: str, tmp: Path, durable: bool) -> list[ModelRequest]:
    """Two turns of one chat on a fresh server; the requests the model received."""
    model = ScriptedModel(thinking)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    async with anyio.create_task_group() as group:
        model_port = await group.start(serve, model)
        process = server(wire, model_port, port, tmp, durable)
        try:
            await up(base)
            async with httpx2.AsyncClient(timeout=60) as http:
                first = [user(1, "Tell me about tea.")]
                answer = await http.post(base + "/api/chat", json={"id": "c", "messages": first})
                assert answer.status_code == 200
                second = [*first, assistant_of(answer.text), user(2, "And coffee?")]
                again = await http.post(base + "/api/chat", json={"id": "c", "messages": second})
                assert again.status_code == 200
        finally:
            kill(process)
        group.cancel_scope.cancel()
    return list(model.requests)


@pytest.mark.parametrize("wire", ["chat", "responses"])
async def test_the_next_turn_of_a_durable_chat_sends_what_a_live_one_does(
    wire: str, tmp_path: Path
) -> None:
    (tmp_path / "live").mkdir()
    (tmp_path / "durable").mkdir()
    live = await two_turns(wire, tmp_path / "live", durable=False)
    durable = await two_turns(wire, tmp_path / "durable", durable=True)
    assert len(live) == len(durable) == 3  # the call, its answer, the second turn
    assert durable[-1].body == live[-1].body
    # And the reasoning did go back (not equal because both lost it).
    sent = str(live[-1].body)
    assert "I should record the topic first." in sent
