"""`python -m agentstream web --durable runs.db`: the issue's scenario with real parts.

A real server process (the CLI) runs a chat's turn as a DBOS workflow on SQLite; its
model is the scripted model served here over HTTP (counting what it is asked) and its
tools write a ledger. The server is killed with SIGKILL inside the slow tool and started
again: a client reattaching by chat id (JSON events, and the UI message stream, with
`Last-Event-ID`) gets the rest of the run and its end; the finished tool did not run
again and the model was not asked again for the finished step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

pytest.importorskip("dbos", reason="the dbos extra is not installed (pip install -e '.[dbos]')")
pytest.importorskip("starlette", reason="the web extra is not installed")

from agentstream.testing import ModelRequest, Reply, ScriptedModel, ToolCall, serve

from ._web import parse_sse
from .test_dbos import Model, _free_port, kill, wait_for

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tests" / "dbos_app" / "web_tools.py"


def start_server(
    db: Path, model_port: int, port: int, ledger: Path, sleep: float, *more: str
) -> Any:
    """A server named web-1, or as `more` (more flags) says."""
    command = [
        sys.executable, "-m", "agentstream", "web", "--durable", str(db), "--port", str(port),
        "--base-url", f"http://127.0.0.1:{model_port}/v1", "--api-key", "k", "--model", "m",
        "--tools", str(TOOLS), *(more or ("--worker", "web-1")),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LEDGER": str(ledger), "TOOL_SLEEP": str(sleep)}
    with (ledger.parent / f"server-{port}.log").open("ab") as errors:  # for a failure
        return subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=errors, cwd=ROOT
        )


async def up(base: str) -> None:
    async with httpx2.AsyncClient() as http:
        with anyio.fail_after(60):
            while True:
                try:
                    if (await http.get(base + "/")).status_code == 200:
                        return
                except httpx2.TransportError:
                    pass
                await anyio.sleep(0.1)


def ledger_lines(ledger: Path) -> list[str]:
    return ledger.read_text().splitlines() if ledger.exists() else []


HOLDER = {"x-agentstream-chat-secret": "the client's own secret"}
CHAT = {"id": "chat-1", "messages": [{"id": "u1", "role": "user", "parts": [
    {"type": "text", "text": "job-1"}]}]}  # fmt: skip


async def test_web_durable_server_killed_mid_tool_and_started_again(tmp_path: Path) -> None:
    db, ledger = tmp_path / "runs.db", tmp_path / "ledger"
    model = Model()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    first_ids: list[int] = []
    first_parts: list[dict[str, Any]] = []
    async with anyio.create_task_group() as group:
        model_port = await group.start(serve, ScriptedModel(model))
        server = start_server(db, model_port, port, ledger, sleep=120)
        try:
            await up(base)
            async with (
                httpx2.AsyncClient(timeout=60) as http,
                http.stream("POST", base + "/api/chat", json=CHAT, headers=HOLDER) as response,
            ):
                assert response.status_code == 200
                buffer = ""
                async for piece in response.aiter_text():
                    buffer += piece
                    if "tool-output-available" in buffer:
                        # The first tool's output is in: wait for the slow one to start.
                        await wait_for(
                            lambda: "start slow job-1" in ledger_lines(ledger), 60, "slow"
                        )
                        break
                for frame in parse_sse(buffer.rsplit("\n\n", 1)[0] + "\n\n"):
                    if frame.data is not None:
                        first_parts.append(frame.json())
                    if frame.id is not None:
                        first_ids.append(frame.id)
        finally:
            kill(server)  # mid-tool
        again = start_server(db, model_port, port, ledger, sleep=0.2)
        try:
            await up(base)
            async with httpx2.AsyncClient(timeout=120) as http:
                last = {"last-event-id": str(first_ids[-1]), **HOLDER}
                stranger = await http.get(base + "/api/events/chat-1")  # without the secret
                rest = await http.get(base + "/api/events/chat-1", headers=last)
                ui = await http.get(base + "/api/chat/chat-1/stream", headers=last)
                whole = await http.get(base + "/api/events/chat-1", headers=HOLDER)
        finally:
            kill(again)
        group.cancel_scope.cancel()
    assert stranger.status_code == 403  # the chat is held by the client that started it
    assert "Traceback" not in stranger.text
    assert rest.status_code == 200
    frames = [f for f in parse_sse(rest.text) if f.data is not None]
    ids = [f.id for f in frames]
    assert ids == list(range(first_ids[-1] + 1, first_ids[-1] + 1 + len(ids)))  # no gap
    kinds = [f.json()["type"] for f in frames]
    assert kinds[-1] == "run_finished"
    assert json.loads(frames[-1].data or "")["result"]["output"] == "done job-1"
    everything = [f for f in parse_sse(whole.text) if f.data is not None]
    assert [f.id for f in everything] == list(range(len(everything)))
    assert [f.data for f in everything][-len(frames) :] == [f.data for f in frames]
    assert [f.json()["type"] for f in everything].count("tool_started") == 2
    # The UI stream from the same point: the rest of the message, then its end.
    parts = [f.json() for f in parse_sse(ui.text) if f.data not in (None, "[DONE]")]
    assert parts[-1]["type"] == "finish"
    assert any(p["type"] == "tool-output-available" for p in parts)
    text = "".join(p["delta"] for p in [*first_parts, *parts] if p["type"] == "text-delta")
    assert text == "done job-1"
    assert first_parts[0]["type"] == "start"
    seen = Counter(ledger_lines(ledger))
    assert seen["end record job-1"] == 1  # finished before the kill: not run again
    assert seen["start slow job-1"] == 2  # cut by the kill: run again
    assert seen["end slow job-1"] == 1
    assert model.asked[("job-1", 1)] == 1  # the finished model step was not asked again
    assert model.asked[("job-1", 2)] == 1


class BookingModel:
    """Each run: `book` on its prompt (a call that needs approval), then an answer."""

    def __init__(self) -> None:
        self.asked: Counter[tuple[str, int]] = Counter()

    def __call__(self, request: ModelRequest) -> Reply:
        prompt = next(m["content"] for m in request.messages if m["role"] == "user")
        step = sum(1 for m in request.messages if m["role"] == "assistant") + 1
        self.asked[(prompt, step)] += 1
        if step == 1:
            return Reply(tool_calls=[ToolCall("book", {"topic": prompt}, id=f"b-{prompt}")])
        return Reply(f"done {prompt}")


def chunks_of(text: str) -> list[dict[str, Any]]:
    return [f.json() for f in parse_sse(text) if f.data not in (None, "[DONE]")]


async def test_web_durable_approval_decided_after_a_restart(tmp_path: Path) -> None:
    db, ledger = tmp_path / "runs.db", tmp_path / "ledger"
    model = BookingModel()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    body = {"id": "chat-b", "messages": [{"id": "u1", "role": "user", "parts": [
        {"type": "text", "text": "book-1"}]}]}  # fmt: skip
    async with anyio.create_task_group() as group:
        model_port = await group.start(serve, ScriptedModel(model))
        server = start_server(db, model_port, port, ledger, sleep=0)
        try:
            await up(base)
            async with httpx2.AsyncClient(timeout=60) as http:
                first = chunks_of((await http.post(base + "/api/chat", json=body)).text)
        finally:
            kill(server)  # the run waits for the decision, durably
        before = ledger_lines(ledger)
        again = start_server(db, model_port, port, ledger, sleep=0)
        try:
            await up(base)
            [request] = [c for c in first if c["type"] == "tool-approval-request"]
            part = {
                "type": "tool-book", "toolCallId": request["toolCallId"],
                "state": "approval-responded", "input": {"topic": "book-1"},
                "approval": {"id": request["approvalId"], "approved": True},
            }  # fmt: skip
            paused = {"id": first[0]["messageId"], "role": "assistant", "parts": [part]}
            decided = {**body, "messages": [*body["messages"], paused]}
            async with httpx2.AsyncClient(timeout=60) as http:
                then = chunks_of((await http.post(base + "/api/chat", json=decided)).text)
        finally:
            kill(again)
        group.cancel_scope.cancel()
    assert first[-1] == {"type": "finish", "finishReason": "tool-calls"}  # waiting
    assert before == []  # the tool did not run before the decision
    assert then[0] == {"type": "start", "messageId": first[0]["messageId"]}  # same message
    assert not any(c["type"] == "tool-approval-request" for c in then)  # only what follows
    [output] = [c for c in then if c["type"] == "tool-output-available"]
    assert output["output"] == "booked book-1"
    assert "".join(c["delta"] for c in then if c["type"] == "text-delta") == "done book-1"
    assert then[-1]["type"] == "finish"
    assert then[-1]["finishReason"] == "stop"
    assert Counter(ledger_lines(ledger))["end book book-1"] == 1
    assert model.asked[("book-1", 1)] == 1  # not asked again after the restart


async def test_web_durable_stop_cancels_the_workflow_and_ends_its_readers(tmp_path: Path) -> None:
    db, ledger = tmp_path / "runs.db", tmp_path / "ledger"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    body = {**CHAT, "id": "chat-s"}
    async with anyio.create_task_group() as group:
        model_port = await group.start(serve, ScriptedModel(Model()))
        server = start_server(db, model_port, port, ledger, sleep=120)
        try:
            await up(base)
            async with httpx2.AsyncClient(timeout=60) as http:
                async with http.stream("POST", base + "/api/chat", json=body) as response:
                    async for _ in response.aiter_text():
                        if "start slow job-1" in ledger_lines(ledger):
                            break
                await wait_for(lambda: "start slow job-1" in ledger_lines(ledger), 60, "slow")
                stopped = await http.post(base + "/api/chat/chat-s/stop", json={})
                events = await http.get(base + "/api/events/chat-s")
                ui = await http.get(base + "/api/chat/chat-s/stream")
                unknown = await http.post(base + "/api/chat/nothing-here/stop", json={})
        finally:
            kill(server)
        group.cancel_scope.cancel()
    assert stopped.status_code == 204
    kinds = [f.json()["type"] for f in parse_sse(events.text) if f.data is not None]
    assert "tool_started" in kinds
    assert "run_finished" not in kinds  # it ended cancelled, and its readers with it
    parts = chunks_of(ui.text)
    assert parts[-1]["type"] == "abort"
    assert unknown.status_code == 404


async def test_web_durable_sigterm_hands_the_run_to_another_server(tmp_path: Path) -> None:
    """Two servers without names on one database; the one running the chat gets SIGTERM."""
    db, ledger = tmp_path / "runs.db", tmp_path / "ledger"
    model = Model()
    port, other_port = _free_port(), _free_port()
    body = {**CHAT, "id": "chat-t"}
    async with anyio.create_task_group() as group:
        model_port = await group.start(serve, ScriptedModel(model))
        # Its slow tool outlasts the grace period (1 s) by far: the run is handed off.
        first = start_server(db, model_port, port, ledger, 120, "--grace", "1")
        other = start_server(db, model_port, other_port, ledger, 0, "--stale", "3600")
        try:
            await up(f"http://127.0.0.1:{port}")
            await up(f"http://127.0.0.1:{other_port}")
            async with httpx2.AsyncClient(timeout=120) as http:
                async with http.stream(
                    "POST", f"http://127.0.0.1:{port}/api/chat", json=body
                ) as response:
                    async for _ in response.aiter_text():
                        if "start slow job-1" in ledger_lines(ledger):
                            break
                await wait_for(lambda: "start slow job-1" in ledger_lines(ledger), 60, "slow")
                first.terminate()  # SIGTERM
                await anyio.to_thread.run_sync(first.wait)  # drains, hands off, exits
                # Silence an hour away: only the `leaving` mark hands the run over.
                events = await http.get(f"http://127.0.0.1:{other_port}/api/events/chat-t")
        finally:
            kill(first)
            kill(other)
        group.cancel_scope.cancel()
    assert first.returncode == 0
    kinds = [f.json()["type"] for f in parse_sse(events.text) if f.data is not None]
    assert kinds[-1] == "run_finished"
    assert kinds.count("tool_finished") == 2
    seen = Counter(ledger_lines(ledger))
    assert seen["end record job-1"] == 1  # finished before the hand-off: not again
    assert seen["start slow job-1"] == 2  # cut by it: run again, on the other server
    assert seen["end slow job-1"] == 1
    assert model.asked[("job-1", 1)] == 1
