"""The web server's bounds (issue 22, findings 4 and 7), over real HTTP on loopback.

Memory is measured with tracemalloc (a bound in bytes, not a timing). The slow-header
and logging tests run the real `serve()` / `python -m agentstream web` in a subprocess.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from agentstream import Agent, ToolContext, tool
from agentstream.testing import Reply, ScriptedModel, ToolCall, offline_model
from agentstream.web import RunRegistry, create_app

from ._web import parse_sse, running_server, ui_chat_body

ROOT = Path(__file__).resolve().parent.parent
REPORTS = 50_000
JSON_TYPE = {"content-type": "application/json"}


def _progress_agent(reports: int) -> Agent:
    @tool
    async def crunch(items: int, ctx: ToolContext) -> str:
        """Crunch items, reporting each one.

        Args:
            items: How many.
        """
        for done in range(reports):
            ctx.progress(done / reports, f"item {done} of {reports}")
            await anyio.sleep(0)
        return "crunched"

    script = [Reply(tool_calls=[ToolCall("crunch", {"items": reports})]), Reply("All done. " * 200)]
    return Agent(client=ScriptedModel(script).async_client, model="m", tools=[crunch])


def _read_to_end(http: httpx2.Client, method: str, path: str, **options: Any) -> list[str]:
    """The `data:` payloads of progress and text, kept as few as possible (the client's
    own memory is measured too): the last progress report and the answer's pieces."""
    last_progress, kinds, text = "", set(), []
    with http.stream(method, path, **options) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            kinds.add(chunk["type"])
            if chunk.get("data", {}).get("kind") == "tool_progress":
                last_progress = chunk["data"]["message"]
            elif chunk["type"] == "text-delta":
                text.append(chunk["delta"])
    return [last_progress, "".join(text), *sorted(kinds)]


def test_a_run_with_50000_progress_reports_keeps_well_under_15_mb() -> None:
    registry = RunRegistry(keep_finished=600)
    app = create_app(_progress_agent(REPORTS), registry=registry)
    with running_server(app) as url, httpx2.Client(base_url=url, timeout=120) as http:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            live = _read_to_end(http, "POST", "/api/chat", json=ui_chat_body("crunch", "big"))
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        again = _read_to_end(http, "GET", "/api/chat/big/stream")
        [summary] = registry.runs()
    numbered = summary.frames
    assert numbered > REPORTS  # every report was numbered (and then coalesced)
    assert grown < 15_000_000, f"the server grew {grown / 1e6:.1f} MB for one run"
    assert live[0] == f"item {REPORTS - 1} of {REPORTS}"
    assert again == live  # a client reattaching renders the same result


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 100_000, id="100000-brackets"),
        pytest.param(b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", id="deep-list"),
        pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, id="deep-object"),
    ],
)
def test_deeply_nested_json_is_a_typed_400_and_no_traceback(body: bytes) -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "agentstream")]
    keep = Keep(level=logging.DEBUG)
    for logger in loggers:
        logger.addHandler(keep)
    agent = Agent(client=offline_model().async_client, model="m")
    try:
        with running_server(create_app(agent)) as url, httpx2.Client(base_url=url) as http:
            chat = http.post("/api/chat", content=body, headers=JSON_TYPE)
            events = http.post("/api/events", content=body, headers=JSON_TYPE)
    finally:
        for logger in loggers:
            logger.removeHandler(keep)
    assert (chat.status_code, events.status_code) == (400, 400)
    assert chat.json() == {"error": chat.json()["error"]}
    assert "Traceback" not in chat.text + events.text
    assert [r for r in seen if r.exc_info or r.levelno >= logging.ERROR] == []


def _hostile(number: int) -> tuple[str, str, dict[str, str], bytes]:
    """The `number`-th hostile request of the storm: method, path, headers, body."""
    ui = json.dumps(ui_chat_body("launch", f"storm-{number}")).encode()
    cases: list[tuple[str, str, dict[str, str], bytes]] = [
        ("POST", "/api/chat", JSON_TYPE, b"[" * 20_000),
        ("POST", "/api/chat", JSON_TYPE, ui.replace(b"storm-", b"storm\\n")),
        ("POST", "/api/chat", JSON_TYPE, ui.replace(b"storm-", "stürm".encode())),
        ("POST", "/api/chat", JSON_TYPE, ui.replace(b"storm-", b"x" * 300)),
        ("POST", "/api/chat", {"content-type": "text/plain"}, ui),
        ("POST", "/api/chat", {**JSON_TYPE, "host": "evil.example"}, ui),
        ("POST", "/api/chat", {**JSON_TYPE, "origin": "http://evil.example"}, ui),
        ("POST", "/api/chat", JSON_TYPE, b'{"id": "\\ud800", "messages": []}'),
        ("POST", "/api/chat", JSON_TYPE, b"\xff\xfe not json"),
        ("POST", "/api/events", JSON_TYPE, b'{"messages": "no"}'),
        ("GET", "/api/chat/%0Aevil/stream", {}, b""),
        ("GET", f"/api/events/{'x' * 500}", {}, b""),
        ("POST", "/api/chat/storm-1/stop", JSON_TYPE, b"{}"),
        ("GET", "/static/..%2F_app.py", {}, b""),
    ]
    if number % 100 == 0:
        cases = [("POST", "/api/chat", JSON_TYPE, b" " * 1_100_000)]
    return cases[number % len(cases)]


def _storm(http: httpx2.Client, requests: int) -> tuple[list[int], list[str]]:
    """`requests` hostile requests, with a good run after every 25th; statuses, answers."""
    statuses, answers = [], []
    for number in range(requests):
        method, path, headers, body = _hostile(number)
        statuses.append(http.request(method, path, headers=headers, content=body).status_code)
        if number % 25 == 24:
            good = http.post("/api/events", json={"prompt": "What's the weather in Paris?"})
            assert good.status_code == 200, good.text
            answers.append(parse_sse(good.text)[-1].json()["type"])
    return statuses, answers


@pytest.fixture
def quiet_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    """agentstream's refusal lines kept by no handler (another test may have added one
    that holds them, and its memory is not the server's)."""
    ours = logging.getLogger("agentstream")
    monkeypatch.setattr(ours, "handlers", [])
    monkeypatch.setattr(ours, "propagate", False)


@pytest.mark.usefixtures("quiet_logs")
def test_a_hostile_storm_leaves_the_server_answering_and_its_memory_as_it_was() -> None:
    registry = RunRegistry(keep_finished=0.3, reattach_grace=0.1)
    app = create_app(Agent(client=offline_model().async_client, model="m"), registry=registry)
    with running_server(app) as url, httpx2.Client(base_url=url, timeout=30) as http:
        _storm(http, 100)  # warm every cache (the server's and the client's) first
        _wait_until_forgotten(registry)
        gc.collect()
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            statuses, answers = _storm(http, 1_000)
            during = tracemalloc.get_traced_memory()[0]
            _wait_until_forgotten(registry)
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        good = http.post("/api/chat", json=ui_chat_body("Weather in Oslo?", "after-storm"))
    assert set(statuses) <= {204, 400, 403, 404, 413, 415}, sorted(set(statuses))
    assert 500 not in statuses
    assert 503 not in statuses
    assert answers == ["run_finished"] * 40
    assert good.status_code == 200
    assert during > baseline  # the runs were kept for a while...
    assert after - baseline < 1_000_000, f"{(after - baseline) / 1e6:.2f} MB left behind"


def _wait_until_forgotten(registry: RunRegistry) -> None:
    deadline = time.monotonic() + 30
    while registry.runs():
        assert time.monotonic() < deadline, registry.runs()
        time.sleep(0.05)


def test_the_registry_lists_and_purges_finished_runs() -> None:
    registry = RunRegistry(keep_finished=600, max_finished=3)
    agent = Agent(client=offline_model().async_client, model="m")
    with (
        running_server(create_app(agent, registry=registry)) as url,
        httpx2.Client(base_url=url) as http,
    ):
        for number in range(5):
            http.post("/api/chat", json=ui_chat_body("hi", f"kept-{number}"))
        kept = [run.key for run in registry.runs()]
        purged = registry.purge()
        left = registry.runs()
    assert kept == ["kept-2", "kept-3", "kept-4"]  # at most max_finished, the newest
    assert purged == 3
    assert left == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            httpx2.get(url, timeout=2)
            return
        except httpx2.TransportError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer")


@pytest.fixture
def served() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`serve()` in a subprocess with a short header timeout and at most 16 connections."""
    port = _free_port()
    code = (
        "from agentstream import Agent\n"
        "from agentstream.testing import offline_model\n"
        "from agentstream.web import serve\n"
        "agent = Agent(client=offline_model().async_client, model='m')\n"
        f"serve(agent, port={port}, header_timeout=0.5, max_connections=16)\n"
    )
    process = _spawn(["-c", code])
    try:
        _wait_for(f"http://127.0.0.1:{port}/", process)
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closes `sock` (waits up to 20 s: a deadline, not a timing)."""
    sock.settimeout(20)
    try:
        while sock.recv(1024):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_slow_header_clients_are_cut_off_and_good_requests_still_answered(
    served: tuple[str, subprocess.Popen[str]],
) -> None:
    url, _ = served
    port = int(url.rsplit(":", 1)[1])
    slow = []
    for _ in range(40):  # more than the cap of 16, each sending half a request head
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        slow.append(sock)
    dribbled = threading.Event()

    def dribble() -> None:  # one byte at a time, never finishing the head
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: ")
            try:
                for _ in range(400):
                    sock.sendall(b"a")
                    time.sleep(0.05)
            except OSError:
                dribbled.set()  # the server cut it off

    dripper = threading.Thread(target=dribble)
    dripper.start()
    try:
        assert all(_closed_by_server(sock) for sock in slow)
        dripper.join(timeout=30)
        assert dribbled.is_set()
        deadline = time.monotonic() + 20
        while True:  # the server is free again: a good request is answered
            try:
                answer = httpx2.get(url + "/", timeout=5)
                break
            except httpx2.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        for sock in slow:
            sock.close()
    assert answer.status_code == 200


def test_the_web_command_logs_no_url_with_a_password(tmp_path: Path) -> None:
    model_port, web_port = _free_port(), _free_port()
    model = _spawn(["-m", "agentstream", "serve-model", "--port", str(model_port)])
    base = f"http://user:hunter2-pass@127.0.0.1:{model_port}/v1"
    web = _spawn(
        ["-m", "agentstream", "web", "--port", str(web_port), "--base-url", base],
        env={"OPENAI_API_KEY": "sk-test-key-not-shown"},
    )
    try:
        _wait_for(f"http://127.0.0.1:{model_port}/v1/models", model)
        _wait_for(f"http://127.0.0.1:{web_port}/", web)
        answer = httpx2.post(
            f"http://127.0.0.1:{web_port}/api/events", json={"prompt": "Hello!"}, timeout=30
        )
        assert answer.status_code == 200
        assert parse_sse(answer.text)[-1].json()["type"] == "run_finished", answer.text[-500:]
    finally:
        web.send_signal(signal.SIGINT)
        out, err = web.communicate(timeout=15)
        model.kill()
        model.communicate()
    assert "hunter2-pass" not in out + err
    assert "sk-test-key-not-shown" not in out + err
    assert f"agentstream web: http://127.0.0.1:{web_port}/" in err  # its own lines remain
