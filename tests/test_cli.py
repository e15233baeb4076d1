"""`python -m agentstream`, from the user's side: the demo, its renderer and loader, serve-model."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio.from_thread
import openai
import pytest

from agentstream import (
    Event,
    FallbackUsed,
    MaxStepsReached,
    ModelError,
    ReasoningDelta,
    RefusalDelta,
    RunFinished,
    RunResult,
    RunStarted,
    SetupError,
    StepFinished,
    StepInfo,
    StepInterrupted,
    StepStarted,
    StreamError,
    TextDelta,
    ToolCallDelta,
    ToolCallInvalid,
    ToolCallReady,
    ToolCallStarted,
    ToolFinished,
    ToolStarted,
    Usage,
    UsageLimitReached,
)
from agentstream.cli import main
from agentstream.cli._demo import connect
from agentstream.cli._loader import load_tools
from agentstream.cli._render import Renderer
from agentstream.testing import OFFLINE_MODEL_NAME, Fault, Reply, ScriptedModel, serve

ROOT = Path(__file__).resolve().parent.parent
WEATHER = "What's the weather in Paris and Tokyo?"
FLAT_OUT = ("--ttft", "0", "--tps", "0")
SECRET = "sk-secret-123"
_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "NO_COLOR")
_ESCAPE = "\x1b"

STOCK_TOOLS = '''
from agentstream import tool

@tool
def stock_price(symbol: str) -> str:
    """Get the latest stock price of a company by its ticker symbol.

    Args:
        symbol: The ticker symbol, e.g. "ACME".
    """
    return f"{symbol.upper()} trades at 42.17 USD"

NOT_A_TOOL = 3
'''


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Choose the offline model whatever the environment; undo what the loader imports."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    modules, path = set(sys.modules), list(sys.path)
    yield
    for name in set(sys.modules) - modules:
        if name.startswith(("_agentstream_tools", "stock", "more_tools", "toolbox")):
            del sys.modules[name]
    sys.path[:] = path


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The demo in a child process, its output piped."""
    env = {k: v for k, v in os.environ.items() if k not in _ENV}
    return subprocess.run(
        [sys.executable, "-m", "agentstream", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def answer_of(stdout: str) -> str:
    """The text after the last tool result (the model's final answer and figures)."""
    return stdout.rpartition("<- ")[2].partition("\n")[2]


# --- the demo, one turn -------------------------------------------------------------------


def test_prompt_offline_piped_is_plain_text() -> None:
    done = run_cli("-p", WEATHER, *FLAT_OUT)
    assert done.returncode == 0, done.stderr
    assert _ESCAPE not in done.stdout
    assert _ESCAPE not in done.stderr
    calls = [line for line in done.stdout.splitlines() if line.startswith("-> get_weather ")]
    assert len(calls) == 2
    assert any("Paris" in line for line in calls)
    assert any("Tokyo" in line for line in calls)
    results = [line for line in done.stdout.splitlines() if line.startswith("<- get_weather")]
    assert len(results) == 2
    answer = answer_of(done.stdout)
    assert "Paris" in answer
    assert "Tokyo" in answer
    assert "[step 1: " in done.stdout
    assert "offline demo model (no network, no API key)" in done.stderr


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_json_lines(api: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", "--api", api, "-p", WEATHER, *FLAT_OUT]) == 0
    out = capsys.readouterr().out
    events = [json.loads(line) for line in out.splitlines()]
    assert events
    assert all(isinstance(event.get("type"), str) for event in events)
    types = [event["type"] for event in events]
    assert types[0] == "run_started"
    assert types[-1] == "run_finished"
    assert "tool_call_delta" in types
    assert types.count("tool_finished") == 2
    steps = [event for event in events if event["type"] == "step_finished"]
    # On the Responses API the assistant message carries the response's id along.
    assert all(("responses" in step["message"]) == (api == "responses") for step in steps)


def test_conversation_without_tools(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-default-tools", "-p", "Hello there!", *FLAT_OUT]) == 0
    captured = capsys.readouterr()
    assert "-> " not in captured.out
    assert captured.out.strip()
    assert "tools: none" in captured.err


@pytest.mark.parametrize(
    "layout",
    [
        pytest.param("file", id="file"),
        pytest.param("folder", id="folder"),
        pytest.param("module", id="module"),
    ],
)
def test_tools_option_offers_the_tools(
    layout: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if layout == "file":
        spec = tmp_path / "stocks.py"
        spec.write_text(STOCK_TOOLS)
    elif layout == "folder":
        (tmp_path / "toolbox").mkdir()
        (tmp_path / "toolbox" / "stock_tools.py").write_text(STOCK_TOOLS)
        spec = tmp_path / "toolbox"
    else:
        (tmp_path / "stock_module.py").write_text(STOCK_TOOLS)
        monkeypatch.chdir(tmp_path)
        spec = Path("stock_module")
    question = "What is the latest stock price of ACME?"
    assert main(["--tools", str(spec), "-p", question, *FLAT_OUT]) == 0
    captured = capsys.readouterr()
    assert "tools: stock_price\n" in captured.err
    assert "-> stock_price " in captured.out
    assert "trades at 42.17 USD" in captured.out


@pytest.mark.parametrize(
    ("files", "spec", "message"),
    [
        pytest.param({}, "missing.py", "no such file or folder", id="missing-file"),
        pytest.param({}, "no_such_module_xyz", "no such module", id="missing-module"),
        pytest.param(
            {"broken.py": "import math\n1 / 0\n"},
            "broken.py",
            "cannot import it: ZeroDivisionError: division by zero",
            id="import-error",
        ),
        pytest.param(
            {"bad_syntax.py": "def f(:\n"},
            "bad_syntax.py",
            "SyntaxError: ",
            id="syntax-error",
        ),
        pytest.param(
            {"needs.py": "import not_installed_dep_xyz\n"},
            "needs.py",
            "ModuleNotFoundError: No module named 'not_installed_dep_xyz'",
            id="missing-dependency",
        ),
        pytest.param({"empty.py": "X = 1\n"}, "empty.py", "no agentstream.Tool", id="no-tools"),
        pytest.param({"notes.txt": "hi"}, ".", "holds no .py files", id="empty-folder"),
    ],
)
def test_bad_tools_are_one_line_setup_errors(
    files: dict[str, str],
    spec: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    assert main(["--tools", spec, "-p", "hi", *FLAT_OUT]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: --tools ")
    assert message in lines[0]


def test_loader_collects_each_tool_once(tmp_path: Path) -> None:
    (tmp_path / "more_tools.py").write_text(STOCK_TOOLS + "again = stock_price\n")
    tools = load_tools([str(tmp_path / "more_tools.py"), str(tmp_path / "more_tools.py")])
    assert [t.name for t in tools] == ["stock_price"]
    with pytest.raises(SetupError, match="no such file"):
        load_tools([str(tmp_path / "nope.py")])


@pytest.mark.parametrize(
    "json_output", [pytest.param(False, id="text"), pytest.param(True, id="json")]
)
def test_unreachable_server_is_one_line_without_the_key(
    json_output: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--base-url", "http://127.0.0.1:1/v1", "--api-key", SECRET, "--max-retries", "0"]
    args += ["--json"] if json_output else []
    assert main([*args, "-p", "hi"]) == 1
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1 if json_output else 2, captured.err  # text mode: banner first
    assert lines[-1].startswith("error: could not connect to the server")
    assert "http://127.0.0.1:1/v1" in lines[-1]
    assert "Traceback" not in captured.err


@pytest.fixture
def failing_server() -> Iterator[int]:
    """A server that answers every request with the fault the test asks for (port)."""

    def policy(request: Any) -> Reply:
        status = 401 if request.model == "gpt-4o-mini" else 404
        echo = f"Incorrect API key provided: {SECRET}" if status == 401 else "no such model"
        return Reply(fault=Fault(status=status, message=echo))

    with anyio.from_thread.start_blocking_portal() as portal:
        future, port = portal.start_task(serve, ScriptedModel(policy))
        yield port
        future.cancel()


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        pytest.param("gpt-4o-mini", "answered 401: Incorrect API key provided: ***", id="401"),
        pytest.param("no-such-model", "answered 404: no such model (is the model", id="404"),
    ],
)
def test_server_errors_are_one_line_with_a_hint(
    model: str, expected: str, failing_server: int, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{failing_server}/v1"
    argv = ["--base-url", url, "--api-key", SECRET, "--model", model, "-p", "hi"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    error = captured.err.splitlines()[-1]
    assert error.startswith("error: the server ")
    assert expected in error


def test_connection_settings_follow_the_sdk() -> None:
    offline = connect(model=None, base_url=None, api_key=None, environ={})
    assert offline.offline
    assert offline.model == OFFLINE_MODEL_NAME
    env = {"OPENAI_API_KEY": SECRET, "OPENAI_MODEL": "gpt-x"}
    online = connect(model=None, base_url=None, api_key=None, environ=env)
    assert not online.offline
    assert online.model == "gpt-x"
    assert SECRET not in repr(online)
    local = connect(model="m", base_url="http://h/v1", api_key=None, environ=env)
    assert (local.model, local.base_url, local.api_key) == ("m", "http://h/v1", SECRET)


def test_help_lists_subcommands_and_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for text in ("replay", "serve-model", "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"):
        assert text in out
    assert "--tools" in out
    assert "NO_COLOR" in out


def test_replay_still_works(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chunk = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
    (tmp_path / "stream.jsonl").write_text(json.dumps(chunk) + "\n")
    assert main(["replay", str(tmp_path / "stream.jsonl")]) == 0
    assert json.loads(capsys.readouterr().out)["choices"][0]["message"]["content"] == "hi"


# --- serve-model and Ctrl-C, in child processes ----------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"serve-model did not listen on port {port} within {timeout}s")


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in _ENV}
    return subprocess.Popen(
        [sys.executable, "-m", "agentstream", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_model_answers_the_openai_client() -> None:
    port = _free_port()
    process = _spawn("serve-model", "--port", str(port), *FLAT_OUT)
    try:
        _wait_for_port(port, process)
        url = f"http://127.0.0.1:{port}/v1"
        with openai.OpenAI(base_url=url, api_key="unused", timeout=10, max_retries=0) as client:
            stream = client.chat.completions.create(
                model=OFFLINE_MODEL_NAME,
                messages=[{"role": "user", "content": "Hello!"}],
                stream=True,
            )
            text = "".join(
                chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices
            )
        assert text.strip()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
        assert f"OPENAI_BASE_URL={url}" in out
        assert "Traceback" not in err
    finally:
        process.kill()
        process.communicate()


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("async", id="async-tool"),
        pytest.param("sync", id="sync-tool"),
    ],
)
def test_ctrl_c_stops_the_turn(kind: str, tmp_path: Path) -> None:
    body = "await anyio.sleep(1.5)" if kind == "async" else "time.sleep(1.5)"
    head = "async def" if kind == "async" else "def"
    (tmp_path / "slow.py").write_text(
        "import time\nimport anyio\nfrom agentstream import tool\n\n"
        f"@tool\n{head} slow_lookup(city: str) -> str:\n"
        f'    """Look up a city, slowly."""\n    {body}\n    return city\n'
    )
    process = _spawn("--tools", str(tmp_path / "slow.py"), "-p", "slow lookup of Paris", *FLAT_OUT)
    try:
        assert process.stdout is not None
        for line in process.stdout:  # wait for the call (the tool starts right after it)
            if line.startswith("-> slow_lookup"):
                break
        else:
            pytest.fail(f"no tool call: {process.communicate()}")
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
        assert process.returncode == 130, err
        assert err.splitlines()[-1] == "interrupted"  # a diagnostic: on stderr
        assert "interrupted" not in out
        assert "Traceback" not in err
    finally:
        process.kill()
        process.communicate()


# --- the renderer -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _result(steps: int, stop: Any = "answer") -> RunResult:
    info = StepInfo(1, "stop", None, None, 0.1, None, 0, 0.0)
    return RunResult("run_1", "", (), (), stop, Usage(250, 30, 280), (info,) * steps, 2.0)


PARIS, TOKYO = '{"location": "Paris"}', '{"location": "Tokyo"}'
WEATHER_EVENTS: list[tuple[float, Event]] = [
    (0.0, RunStarted("run_1", "m", ("get_weather",))),
    (0.0, StepStarted(1)),
    (0.3, ReasoningDelta(1, 0, "Two cities,")),
    (0.3, ReasoningDelta(1, 0, " two calls.")),
    (0.4, ToolCallStarted(1, 0, 0, "call_1", "get_weather")),
    (0.4, ToolCallDelta(1, 0, 0, "call_1", "get_weather", '{"location":', None)),
    (0.5, ToolCallDelta(1, 0, 0, "call_1", "get_weather", ' "Paris"}', {"location": "Paris"})),
    (0.5, ToolCallStarted(1, 0, 1, "call_2", "get_weather")),
    (0.6, ToolCallDelta(1, 0, 1, "call_2", "get_weather", '{"location": "Tokyo"}', None)),
    (0.7, ToolCallReady(1, 0, "call_1", "get_weather", {"location": "Paris"}, PARIS)),
    (0.7, ToolCallReady(1, 1, "call_2", "get_weather", {"location": "Tokyo"}, TOKYO)),
    (1.0, ToolStarted(1, 0, "call_1", "get_weather", {"location": "Paris"})),
    (1.0, ToolStarted(1, 1, "call_2", "get_weather", {"location": "Tokyo"})),
    (1.25, ToolFinished(1, 1, "call_2", "get_weather", "Rain\nin Tokyo", None, None, 0.25)),
    (1.5, ToolFinished(1, 0, "call_1", "get_weather", "Sun in Paris", None, None, 0.5)),
    (1.5, StepFinished(1, "tool_calls", {}, Usage(100, 20, 120), 0.35, 1.0, 60.0)),
    (1.5, StepStarted(2)),
    (1.8, TextDelta(2, 0, "Paris is sunny")),
    (1.9, TextDelta(2, 0, " and Tokyo is rainy.")),
    (2.0, StepFinished(2, "stop", {}, Usage(150, 10, 160, 4), 0.3, 0.5, None)),
    (2.0, RunFinished(_result(2))),
]
WEATHER_TEXT = """\
thinking: Two cities, two calls.
-> get_weather {"location": "Paris"}
-> get_weather {"location": "Tokyo"}
<- get_weather (0.25s): Rain in Tokyo
<- get_weather (0.50s): Sun in Paris
[step 1: ttft 0.35s, 60 tok/s, tools 0.50s, tokens 100 in, 20 out, 1.00s]
Paris is sunny and Tokyo is rainy.
[step 2: ttft 0.30s, tokens 150 in, 10 out (4 reasoning), 0.50s]
[total: 2 steps, 2.00s, tokens 250 in, 30 out]
"""
FAILURE_EVENTS: list[tuple[float, Event]] = [
    (0.0, StepStarted(1)),
    (0.1, ToolCallStarted(1, 0, 0, "call_1", "divide")),
    (0.1, ToolCallDelta(1, 0, 0, "call_1", "divide", '{"a": 1, "b": 0}', None)),
    (0.1, ToolCallStarted(1, 0, 1, "call_2", "nope")),
    (0.1, ToolCallDelta(1, 0, 1, "call_2", "nope", "{}", None)),
    (0.2, ToolCallReady(1, 0, "call_1", "divide", {"a": 1, "b": 0}, '{"a": 1, "b": 0}')),
    (0.2, ToolCallInvalid(1, 1, "call_2", "nope", "{}", "unknown tool 'nope'")),
    (0.2, ToolStarted(1, 0, "call_1", "divide", {"a": 1, "b": 0})),
    (0.2, ToolFinished(1, 0, "call_1", "divide", "ZeroDivisionError", None, ValueError(), 0.0)),
    (0.2, StepFinished(1, "tool_calls", {}, None, 0.1, 0.2, None)),
    (0.2, StepStarted(2)),
    (0.3, RefusalDelta(2, 0, "I will not.")),
    (0.3, MaxStepsReached(2, 2)),
    (0.3, RunFinished(_result(1, "refusal"))),
]
FAILURE_TEXT = """\
-> divide {"a": 1, "b": 0}
-> nope {}
   invalid call: unknown tool 'nope'
<- divide failed (0.00s): ZeroDivisionError
[step 1: ttft 0.10s, tools 0.00s, 0.20s]
refusal: I will not.
reached the step limit (2 steps)
stopped: refusal
"""


def _render(
    events: Sequence[tuple[float, Event]], *, terminal: bool, width: int = 80, finish: bool = True
) -> str:
    out = io.StringIO()
    clock = Clock()
    renderer = Renderer(out, terminal=terminal, width=width, unicode=True, clock=clock)
    for at, event in events:
        clock.now = 100.0 + at
        renderer.handle(event)
    if finish:
        renderer.finish()
    return out.getvalue()


def screen(output: str) -> list[str]:
    """What a terminal shows after `output`: just enough of a VT100 for the renderer."""
    lines, row, col = [""], 0, 0
    position = 0
    control = re.compile(r"\x1b\[([\d;]*)([A-Za-z])")
    while position < len(output):
        match = control.match(output, position)
        if match:
            count, command = match.groups()
            if command == "A":
                row -= int(count or 1)
            elif command == "J":
                lines[row] = lines[row][:col]
                del lines[row + 1 :]
            position = match.end()
            continue
        char = output[position]
        position += 1
        if char == "\r":
            col = 0
        elif char == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        else:
            lines[row] = lines[row][:col].ljust(col) + char + lines[row][col + 1 :]
            col += 1
    return lines


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(WEATHER_EVENTS, WEATHER_TEXT, id="parallel-calls"),
        pytest.param(FAILURE_EVENTS, FAILURE_TEXT, id="failures"),
    ],
)
def test_renderer_plain_text(events: list[tuple[float, Event]], expected: str) -> None:
    text = _render(events, terminal=False)
    assert text == expected
    assert _ESCAPE not in text


@pytest.mark.parametrize(
    ("retry_in", "then"),
    [
        pytest.param(0.5, "trying again in 0.5s", id="retry"),
        pytest.param(None, "giving up", id="last"),
    ],
)
def test_renderer_says_a_step_was_interrupted(retry_in: float | None, then: str) -> None:
    broken = StreamError("the stream broke: RemoteProtocolError: peer closed")
    events: list[tuple[float, Event]] = [
        (0.0, StepStarted(1)),
        (0.1, TextDelta(1, 0, "It is sun")),
        (0.2, StepInterrupted(1, 1, broken, "It is sun", "", (), retry_in)),
        (0.7, StepStarted(1, 2)),
        (0.8, TextDelta(1, 0, "It is sunny.")),
    ]
    lines = _render(events, terminal=False).splitlines()
    assert lines == [
        "It is sun",
        f"step interrupted: {broken}; its output above is withdrawn; {then}",
        "It is sunny.",
    ]


def test_renderer_says_a_model_fell_back_and_a_usage_limit_stopped_the_run() -> None:
    down = ModelError("the server failed: HTTP 503", status_code=503)
    step = StepInfo(1, "tool_calls", None, 0.1, 0.2, None, 1, 0.0, model="small", cost=0.001)
    result = RunResult(
        "run_1", "", (), (), "usage_limit", Usage(), (step, step), 1.0, cost=0.0025,
        usage_limit="cost",
    )  # fmt: skip
    events: list[tuple[float, Event]] = [
        (0.0, FallbackUsed(1, "big", "small", down)),
        (0.5, UsageLimitReached(2, "cost", 0.003, 0.0025)),
        (0.6, RunFinished(result)),
    ]
    lines = _render(events, terminal=False).splitlines()
    assert lines[:3] == [
        "big gave up on this step; small answers it",
        "usage limit cost: 0.003 > 0.0025",
        "stopped: usage_limit",
    ]
    assert "$0.0025" in lines[3]


def test_renderer_terminal_redraws_in_place() -> None:
    output = _render(WEATHER_EVENTS, terminal=True, width=60)
    assert "\x1b[2m" in output  # reasoning is dim
    assert screen(output) == [
        "Two cities, two calls.",
        '→ get_weather {"location": "Paris"}',
        '→ get_weather {"location": "Tokyo"}',
        "✓ get_weather 0.25s  Rain in Tokyo",
        "✓ get_weather 0.50s  Sun in Paris",
        "step 1: ttft 0.35s · 60 tok/s · tools 0.50s · tokens 100 in, 20 out · 1.00s",
        "Paris is sunny and Tokyo is rainy.",
        "step 2: ttft 0.30s · tokens 150 in, 10 out (4 reasoning) · 0.50s",
        "total: 2 steps · 2.00s · tokens 250 in, 30 out",
        "",
    ]


def test_renderer_terminal_live_lines() -> None:
    running = WEATHER_EVENTS[:13]  # both tools started, none finished
    assert screen(_render(running, terminal=True, width=60, finish=False))[-2:] == [
        '⠋ get_weather {"location": "Paris"} 0.0s',
        '⠋ get_weather {"location": "Tokyo"} 0.0s',
    ]
    # Arguments longer than the screen show their newest end, on one line.
    long_call: list[tuple[float, Event]] = [
        (0.0, StepStarted(1)),
        (0.1, ToolCallStarted(1, 0, 0, "c", "f")),
        (0.1, ToolCallDelta(1, 0, 0, "c", "f", '{"text": "' + "x" * 100 + "END", None)),
    ]
    assert screen(_render(long_call, terminal=True, width=40, finish=False)) == [
        "→ f …" + "x" * 31 + "END"
    ]


def test_mcp_servers_add_their_tools(capsys: pytest.CaptureFixture[str]) -> None:
    server = f"{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'tests' / 'mcp_server.py'))}"
    argv = ["--json", "--no-default-tools", "--mcp", server, "-p", "Add 2 and 40", *FLAT_OUT]
    assert main(argv) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["type"] == "run_started"
    assert {"add", "get_weather", "slow"} <= set(events[0]["tools"])
    done = [event for event in events if event["type"] == "tool_finished"]
    assert [(event["name"], event["output"]) for event in done] == [("add", '{"result":42}')]


def test_mcp_server_that_does_not_start_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--no-default-tools", "--mcp", f"{shlex.quote(sys.executable)} -c pass"]
    assert main([*argv, "-p", "Add 2 and 40", *FLAT_OUT]) == 1
    err = capsys.readouterr().err
    assert "error: cannot connect to the MCP server 'python" in err
    assert "Traceback" not in err
