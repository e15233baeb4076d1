"""`deps` in durable web chats: plain data per request, made into the run's deps by a
factory in whichever worker runs the workflow, again after a crash.

A real app process (tests/dbos_app/web_deps.py: DBOS on SQLite, uvicorn) is killed with
SIGKILL while the tool that reads `ctx.deps` waits, and started again as another worker:
the recovered run's tool gets deps made there from the data the request gave.
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

from ._web import parse_sse
from .test_dbos import _free_port, kill
from .test_web_durable import up

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "dbos_app" / "web_deps.py"
BOB = {"x-user": "bob"}


def whoami(request: ModelRequest) -> Reply:
    results = [m["content"] for m in request.messages if m["role"] == "tool"]
    return Reply(results[-1]) if results else Reply(tool_calls=[ToolCall("whoami", {}, id="w")])


def start(db: str, port: int, model_port: int, worker: str, sleep: float) -> Any:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORKER": worker, "TOOL_SLEEP": str(sleep)}
    return subprocess.Popen(
        [sys.executable, str(APP), db, str(port), str(model_port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip


async def test_a_durable_runs_deps_are_made_again_by_the_worker_that_recovers_it(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    model = ScriptedModel(whoami)
    body = {"prompt": "who am I?"}
    async with anyio.create_task_group() as group:
        model_port = await group.start(serve, model)
        first = start(db, port, model_port, "worker one", 120)
        try:
            await up(base)
            async with (
                httpx2.AsyncClient(timeout=60) as http,
                http.stream("POST", base + "/api/events", json=body, headers=BOB) as cut,
            ):
                key = cut.headers["x-agentstream-run"]
                seen = ""
                async for piece in cut.aiter_text():
                    seen += piece
                    if '"tool_started"' in seen:
                        break  # the tool that reads ctx.deps waits: kill its worker
        finally:
            kill(first)
        again = start(db, port, model_port, "worker two", 0)
        try:
            await up(base)
            async with httpx2.AsyncClient(timeout=60) as http:
                rest = await http.get(f"{base}/api/events/{key}")
        finally:
            kill(again)
        group.cancel_scope.cancel()
    [end] = [f.json() for f in parse_sse(rest.text) if f.data and '"run_finished"' in f.data]
    assert end["result"]["output"] == "bob, made by worker two"
    assert len(model.requests) == 2  # the call, then its answer: the first not asked again
