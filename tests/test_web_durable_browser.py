"""The chat page on a durable server, in a real headless Chromium: typing while a run
streams steers it, and a running tool card's cancel button cancels that call, as on a live
server. The server is `python -m agentstream web --durable runs.db` (DBOS on SQLite), its
model the scripted one served over HTTP from a thread of this test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

pytest.importorskip("dbos", reason="the dbos extra is not installed (pip install -e '.[dbos]')")
pytest.importorskip("starlette", reason="the web extra is not installed")

from agentstream.testing import ModelRequest, Reply, ScriptedModel, ToolCall, serve

from .test_dbos import _free_port, kill
from .test_web_browser import WAIT, ask, browser, page, shot  # noqa: F401 (fixtures)
from .test_web_durable_control import TOOLS

ROOT = Path(__file__).resolve().parent.parent


def policy(request: ModelRequest) -> Reply:
    """A call to the slow `wait` tool, then an echo of the last user message."""
    if not any(m["role"] == "tool" for m in request.messages):
        return Reply(tool_calls=[ToolCall("wait", {"topic": "tea"}, id="call-1")])
    return Reply(f"You said: {request.messages[-1]['content']}")


@contextmanager
def model_served(model: ScriptedModel) -> Iterator[int]:
    """The scripted model over HTTP on an event loop of its own thread; its port."""
    ports: list[int] = []
    ready, done = threading.Event(), threading.Event()

    async def main() -> None:
        async with anyio.create_task_group() as group:
            ports.append(await group.start(serve, model))
            ready.set()
            while not done.is_set():
                await anyio.sleep(0.05)
            group.cancel_scope.cancel()

    thread = threading.Thread(target=anyio.run, args=(main,), daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield ports[0]
    finally:
        done.set()
        thread.join(30)


@contextmanager
def durable_server(db: Path, ledger: Path, model_port: int) -> Iterator[str]:
    port = _free_port()
    command = [
        sys.executable, "-m", "agentstream", "web", "--durable", str(db), "--port", str(port),
        "--base-url", f"http://127.0.0.1:{model_port}/v1", "--api-key", "k", "--model", "m",
        "--tools", str(TOOLS),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LEDGER": str(ledger), "TOOL_SLEEP": "120"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        kill(process)


def up(base: str) -> None:
    """Wait until the server answers (it starts Python, then DBOS, in a few seconds)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx2.get(base + "/", timeout=5).status_code == 200:
                return
        except httpx2.TransportError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def test_the_page_steers_and_cancels_a_call_of_a_durable_run(page: Any, tmp_path: Path) -> None:  # noqa: F811
    model = ScriptedModel(policy)
    ledger = tmp_path / "ledger"
    with (
        model_served(model) as model_port,
        durable_server(tmp_path / "runs.db", ledger, model_port) as url,
    ):
        up(url)
        page.goto(url + "/")
        ask(page, "go")
        page.wait_for_selector(".tool.running .cancel-call", timeout=WAIT)
        assert page.locator("#send").inner_text() == "Steer"
        ask(page, "Also Paris.")
        page.wait_for_selector(".steer", timeout=WAIT)
        assert "queued" in page.locator(".steer .state").inner_text()
        page.locator(".tool.running .cancel-call").click()
        page.wait_for_selector(".steer.delivered", timeout=WAIT)
        page.wait_for_selector(".run-metrics", timeout=WAIT)  # the run went on to answer
        shot(page, "durable-steered-and-cancelled")
        card = page.locator(".tool")
        assert card.locator(".state").inner_text() == "cancelled"
        assert card.locator(".result").inner_text().startswith("Cancelled by the user")
        assert page.locator(".steer .state").inner_text() == "read before step 2"
        assert page.locator(".step .text").last.inner_text() == "You said: Also Paris."
    assert "cancelled wait tea" in ledger.read_text().splitlines()  # where it ran
    told = model.requests[-1].messages
    assert told[-2]["role"] == "tool"
    assert told[-1] == {"role": "user", "content": "Also Paris."}
