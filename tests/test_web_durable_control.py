"""Durable web chats steered like live ones: a message sent mid-run, one tool call cancelled,
the run stopped, from the server running it or from another one on the same database.

Real parts: `python -m agentstream web --durable` server processes (DBOS on SQLite, or
two servers on a real Postgres), the scripted model served here over HTTP (recording what
it is asked), tools that write a ledger. On SQLite the server is killed with SIGKILL after
the steering and started again: the recovered run neither delivers the message twice nor
runs the cancelled tool again, and the model is not asked again for a finished step.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
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
from .test_dbos import _free_port, kill, postgres, wait_for
from .test_web_durable import HOLDER, ledger_lines, up

__all__ = ["postgres"]  # the fixture, used by name

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tests" / "dbos_app" / "web_tools.py"
STEER = "also check the weather"


def start_server(
    db: str, model_port: int, port: int, ledger: Path, sleep: float, worker: str
) -> Any:
    command = [
        sys.executable, "-m", "agentstream", "web", "--durable", db, "--port", str(port),
        "--base-url", f"http://127.0.0.1:{model_port}/v1", "--api-key", "k", "--model", "m",
        "--tools", str(TOOLS), "--worker", worker,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LEDGER": str(ledger), "TOOL_SLEEP": str(sleep)}
    with (ledger.parent / f"{worker}.log").open("ab") as errors:  # read when a test fails
        return subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=errors, cwd=ROOT
        )


class TwoToolSteps:
    """Step 1 calls `tool` on "first", step 2 on "second", step 3 answers; every request kept."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.asked: Counter[int] = Counter()
        self.seen: dict[int, list[dict[str, Any]]] = {}

    def __call__(self, request: ModelRequest) -> Reply:
        step = sum(1 for m in request.messages if m["role"] == "assistant") + 1
        self.asked[step] += 1
        self.seen[step] = [dict(m) for m in request.messages]
        if step < 3:
            topic = "first" if step == 1 else "second"
            return Reply(tool_calls=[ToolCall(self.tool, {"topic": topic}, id=f"c-{step}")])
        return Reply("done")


def chat(chat_id: str) -> dict[str, Any]:
    return {"id": chat_id, "messages": [{"id": "u1", "role": "user", "parts": [
        {"type": "text", "text": "job"}]}]}  # fmt: skip


async def open_chat(
    http: httpx2.AsyncClient, base: str, chat_id: str, ledger: Path, line: str
) -> None:
    """Start the chat's run, read its stream until `line` is in the ledger, then leave."""
    async with http.stream("POST", base + "/api/chat", json=chat(chat_id), headers=HOLDER) as r:
        assert r.status_code == 200
        async for _ in r.aiter_text():
            if line in ledger_lines(ledger):
                break
    await wait_for(lambda: line in ledger_lines(ledger), 60, line)


def events_of(text: str) -> list[dict[str, Any]]:
    frames = [f for f in parse_sse(text) if f.data is not None and f.id is not None]
    assert [f.id for f in frames] == list(range(len(frames)))  # no gap, no duplicate
    return [f.json() for f in frames]


async def test_steer_and_cancel_a_durable_run_then_kill_and_recover_it(tmp_path: Path) -> None:
    db, ledger = str(tmp_path / "runs.db"), tmp_path / "ledger"
    model = TwoToolSteps("slow")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    async with anyio.create_task_group() as group:
        model_port = await group.start(serve, ScriptedModel(model))
        server = start_server(db, model_port, port, ledger, 120, "web-1")
        try:
            await up(base)
            async with httpx2.AsyncClient(timeout=60) as http:
                await open_chat(http, base, "chat-c", ledger, "start slow first")
                steer = await http.post(
                    base + "/api/chat/chat-c/steer", json={"text": STEER}, headers=HOLDER
                )
                stranger = await http.post(base + "/api/chat/chat-c/steer", json={"text": "x"})
                unknown = await http.post(
                    base + "/api/chat/chat-c/cancel", json={"toolCallId": "nope"}, headers=HOLDER
                )
                cancel = {"toolCallId": "c-1", "reason": "not needed"}
                cancelled = await http.post(
                    base + "/api/chat/chat-c/cancel", json=cancel, headers=HOLDER
                )
                # Step 2 starts its tool once the model has had the cancel and the message.
                await wait_for(lambda: "start slow second" in ledger_lines(ledger), 60, "step 2")
        finally:
            kill(server)  # mid-way through step 2's tool
        again = start_server(db, model_port, port, ledger, 0.2, "web-1")
        try:
            await up(base)
            async with httpx2.AsyncClient(timeout=120) as http:
                whole = await http.get(base + "/api/events/chat-c", headers=HOLDER)
                late = await http.post(
                    base + "/api/chat/chat-c/steer", json={"text": "too late"}, headers=HOLDER
                )
        finally:
            kill(again)
        group.cancel_scope.cancel()
    assert steer.status_code == 200
    message_id = steer.json()["id"]
    assert stranger.status_code == 403  # the holder secret is enforced as for a live chat
    assert unknown.status_code == 409
    assert cancelled.status_code == 204
    assert late.status_code == 409  # the run has ended
    # The model was told of the cancel, then read the message, after the tool results.
    told = model.seen[2]
    assert told[-2]["role"] == "tool"
    assert told[-2]["tool_call_id"] == "c-1"
    assert told[-2]["content"].startswith("Cancelled by the user")
    assert "not needed" in told[-2]["content"]
    assert told[-1] == {"role": "user", "content": STEER}
    assert [m["content"] for m in model.seen[3] if m["role"] == "user"] == ["job", STEER]
    assert model.asked == Counter({1: 1, 2: 1, 3: 1})  # no finished step asked again
    seen = Counter(ledger_lines(ledger))
    assert seen["start slow first"] == 1  # cancelled: never run again by the recovery
    assert seen["end slow first"] == 0
    assert seen["stopped slow first"] == 1  # the sync tool saw ctx.cancelled and returned
    assert seen["start slow second"] == 2  # cut by the kill: run again
    assert seen["end slow second"] == 1
    events = events_of(whole.text)
    assert events[-1]["type"] == "run_finished"
    kinds = Counter(e["type"] for e in events)
    assert kinds["tool_cancelled"] == 1
    assert kinds["message_queued"] == kinds["message_delivered"] == 1  # exactly once
    [queued] = [e for e in events if e["type"] == "message_queued"]
    [delivered] = [e for e in events if e["type"] == "message_delivered"]
    assert queued["id"] == delivered["id"] == message_id  # the id the sender was given
    [cancel_event] = [e for e in events if e["type"] == "tool_cancelled"]
    assert cancel_event["reason"] == "not needed"


async def test_steer_cancel_and_stop_from_another_server_on_postgres(
    postgres: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    key = "chat-" + uuid.uuid4().hex[:8]  # the cluster is the module's: one chat per test
    model = TwoToolSteps("wait")
    ports = _free_port(), _free_port()
    near, far = (f"http://127.0.0.1:{p}" for p in ports)
    async with anyio.create_task_group() as group:
        model_port = await group.start(serve, ScriptedModel(model))
        a = start_server(postgres, model_port, ports[0], ledger, 120, "web-a")
        b = start_server(postgres, model_port, ports[1], ledger, 120, "web-b")
        try:
            await up(near)
            await up(far)
            async with httpx2.AsyncClient(timeout=60) as http:
                await open_chat(http, near, key, ledger, "start wait first")
                steer = await http.post(
                    far + f"/api/chat/{key}/steer", json={"text": STEER}, headers=HOLDER
                )
                cancel = {"toolCallId": "c-1", "reason": "not needed"}
                cancelled = await http.post(
                    far + f"/api/chat/{key}/cancel", json=cancel, headers=HOLDER
                )
                await wait_for(lambda: "start wait second" in ledger_lines(ledger), 60, "step 2")
                stopped = await http.post(far + f"/api/chat/{key}/stop", json={}, headers=HOLDER)
                # The tool was cancelled where it ran, on the other server.
                await wait_for(lambda: "cancelled wait second" in ledger_lines(ledger), 60, "stop")
                events = await http.get(far + f"/api/events/{key}", headers=HOLDER)
                ui = await http.get(near + f"/api/chat/{key}/stream", headers=HOLDER)
        finally:
            kill(a)
            kill(b)
        group.cancel_scope.cancel()
    assert (steer.status_code, cancelled.status_code, stopped.status_code) == (200, 204, 204)
    seen = Counter(ledger_lines(ledger))
    assert seen["cancelled wait first"] == 1  # cancelled on server A, asked on server B
    assert seen["end wait first"] == seen["end wait second"] == 0
    assert model.seen[2][-1] == {"role": "user", "content": STEER}
    assert model.asked == Counter({1: 1, 2: 1})  # stopped: no third request
    stopped_events = [f.json() for f in parse_sse(events.text) if f.data and f.id is None]
    assert stopped_events == [{"type": "run_stopped", "reason": "stopped"}]  # as a live run's
    kinds = [e["type"] for e in events_of(events.text)]
    assert "run_finished" not in kinds
    assert "tool_cancelled" in kinds
    assert "message_delivered" in kinds
    parts = [f.json() for f in parse_sse(ui.text) if f.data not in (None, "[DONE]")]
    assert parts[-1]["type"] == "abort"  # as a stopped live run's stream ends
    from dbos import DBOSClient

    client = DBOSClient(system_database_url=postgres)
    try:
        status = client.retrieve_workflow(f"web:{key}:1").get_status()
        assert status.status == "CANCELLED"  # for good: no server recovers it
    finally:
        client.destroy()
