"""What misled a new user of the command line, each through the real CLI in a child process:
mistyped flags, subcommand help, type errors, session flags, a missing extra, a busy port,
where diagnostics go, the banner's MCP tools, `web --tools`, and typed output in a pipe."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import httpx2
import pytest

from agentstream import Agent, Session, tool
from agentstream.stores import SQLiteStore
from agentstream.testing import OFFLINE_MODEL_NAME, offline_model

ROOT = Path(__file__).resolve().parent.parent
FLAT_OUT = ("--ttft", "0", "--tps", "0", "--no-color")
COMMANDS = ("replay", "serve-model", "load-test", "bench", "web")
MCP_SERVER = f"{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'tests' / 'mcp_server.py'))}"
TRIP = {
    "type": "object",
    "properties": {"destination": {"type": "string"}, "nights": {"type": "integer"}},
    "required": ["destination", "nights"],
}
STOCKS = '''
from agentstream import tool

@tool
def stock_price(symbol: str) -> str:
    """Get the latest stock price of a company by its ticker symbol.

    Args:
        symbol: The ticker symbol, e.g. "ACME".
    """
    return f"{symbol.upper()} trades at 42.17 USD"
'''


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}


def cli(
    *args: str, python: tuple[str, ...] = ("-m", "agentstream")
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *python, *args], cwd=ROOT, env=env(), capture_output=True,
        text=True, timeout=120, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def test_a_mistyped_flag_is_named_with_a_suggestion() -> None:
    done = cli("--promt", "hi")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "python -m agentstream: error: unknown flag --promt; did you mean --prompt? "
        "(see python -m agentstream --help)"
    ]
    assert done.stdout == ""


def test_a_stray_word_lists_every_subcommand() -> None:
    done = cli("hi")
    assert done.returncode == 2
    assert "the subcommands are replay, serve-model, load-test, bench, web" in done.stderr
    assert "-p" in done.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_each_subcommand_has_its_own_usage_line(command: str) -> None:
    done = cli(command, "--help")
    assert done.returncode == 0, done.stderr
    usage = done.stdout.split("\n\n", 1)[0]
    assert usage.startswith(f"usage: python -m agentstream {command} ")
    others = [other for other in COMMANDS if other != command]
    assert not any(re.search(rf"\b{other}\b", usage) for other in others), usage


def test_a_bad_number_is_said_in_plain_words() -> None:
    done = cli("--max-steps", "abc", "-p", "hi")
    assert done.returncode == 2
    assert "argument --max-steps: must be a whole number >= 1, not 'abc'" in done.stderr
    assert "_positive" not in done.stderr


def test_help_documents_the_exit_codes() -> None:
    out = cli("--help").stdout
    for code in ("0 ", "1 ", "2 ", "130", "141"):
        assert f"\n  {code}" in out


def _unfinished_session(db: Path) -> None:
    """A session file whose run waits for approval, made with the public API."""

    @tool(needs_approval=True)
    def book_hotel(city: str, nights: int) -> str:
        """Book a hotel room in a city.

        Args:
            city: The city, e.g. "Rome".
            nights: How many nights.
        """
        return "booked"

    model = offline_model()
    agent = Agent(client=model.async_client, model=OFFLINE_MODEL_NAME, tools=[book_hotel])
    session = Session(SQLiteStore(db), "cli")
    result = anyio.run(lambda: agent.run("Book a hotel in Rome for 2 nights", session=session))
    assert result.stop_reason == "approval_required"


def test_an_unfinished_run_gives_cli_advice_and_forget_drops_it(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    _unfinished_session(db)
    refused = cli("--session", str(db), "-p", "What is 17 * 23?", *FLAT_OUT)
    assert refused.returncode == 2
    assert "add --resume to continue it, or --forget to drop it" in refused.stderr
    assert "agent.resume" not in refused.stderr
    assert "session.clear" not in refused.stderr
    forgot = cli("--session", str(db), "--forget", "-p", "What is 17 * 23?", *FLAT_OUT)
    assert forgot.returncode == 0, forgot.stderr
    assert "forgot the unfinished run" in forgot.stderr
    assert "391" in forgot.stdout
    nothing = cli("--session", str(db), "--resume", *FLAT_OUT)
    assert nothing.returncode == 2
    assert "has no unfinished run to continue" in nothing.stderr


def test_resume_with_nothing_to_resume_is_an_error_even_with_a_prompt(tmp_path: Path) -> None:
    done = cli("--session", str(tmp_path / "new.db"), "--resume", "-p", "hi", *FLAT_OUT)
    assert done.returncode == 2
    assert "error: --resume:" in done.stderr
    assert done.stdout == ""  # the prompt did not run


def test_forget_needs_a_session() -> None:
    done = cli("--forget", "-p", "hi", *FLAT_OUT)
    assert done.returncode == 2
    assert "--forget drops a session's unfinished run: give --session FILE too" in done.stderr


def test_mcp_url_without_the_extra_names_its_flag() -> None:
    hide = "import sys; sys.modules['mcp'] = None; from agentstream.cli import entry; entry()"
    done = cli("--mcp-url", "http://127.0.0.1:9/mcp", "-p", "hi", python=("-c", hide))
    assert done.returncode == 2
    assert "--mcp-url needs the MCP extra: pip install 'agentstream[mcp]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_web_on_a_busy_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli("web", "--port", str(port))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"agentstream web: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def test_diagnostics_go_to_stderr_and_the_answer_to_stdout() -> None:
    done = cli("-p", "What is 17 * 23?", *FLAT_OUT)
    assert done.returncode == 0, done.stderr
    assert "agentstream demo:" in done.stderr
    assert "agentstream demo:" not in done.stdout
    assert "391" in done.stdout


def test_the_banner_lists_the_mcp_servers_tools() -> None:
    done = cli("--no-default-tools", "--mcp", MCP_SERVER, "-p", "Add 2 and 40", *FLAT_OUT)
    assert done.returncode == 0, done.stderr
    banner = next(line for line in done.stderr.splitlines() if line.startswith("tools: "))
    assert {"add", "get_weather", "slow"} <= set(banner[len("tools: ") :].split(", "))
    assert "42" in done.stdout


@pytest.mark.parametrize("flags", [[], ["--json"]], ids=["piped", "json"])
def test_typed_output_in_a_pipe_is_the_value_alone(tmp_path: Path, flags: list[str]) -> None:
    schema = tmp_path / "trip.json"
    schema.write_text(json.dumps(TRIP))
    done = cli("-p", "Plan 4 nights in Lisbon", "--output-schema", str(schema),
               "--no-default-tools", *flags, *FLAT_OUT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"destination": "Lisbon", "nights": 4}  # one value
    if flags:  # --json: the event lines went to stderr
        types = [json.loads(line)["type"] for line in done.stderr.splitlines()]
        assert types[0] == "run_started"
        assert "output_ready" in types


@pytest.mark.parametrize("source", ["tools", "mcp"])
def test_web_takes_the_tool_flags(tmp_path: Path, source: str) -> None:
    (tmp_path / "stocks.py").write_text(STOCKS)
    if source == "tools":
        flags = ["--tools", str(tmp_path / "stocks.py")]
        prompt, expected = "What is the latest stock price of ACME?", "trades at 42.17 USD"
    else:
        flags = ["--no-default-tools", "--mcp", MCP_SERVER]
        prompt, expected = "Add 2 and 40", '"name":"add"'
    child = subprocess.Popen(
        [sys.executable, "-m", "agentstream", "web", "--port", "0", *flags, *FLAT_OUT[:4]],
        cwd=ROOT, env=env(), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert child.stderr is not None
        first = child.stderr.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+)/", first)
        assert url is not None, first
        response = httpx2.post(f"{url.group(1)}/api/events", json={"prompt": prompt}, timeout=60)
        started = json.loads(response.text.split("data: ", 1)[1].split("\n", 1)[0])
        assert "get_weather" not in started["tools"] or source == "mcp"  # demo tools replaced
        assert "book_hotel" not in started["tools"]
        assert '"tool_finished"' in response.text
        assert expected in response.text
    finally:
        child.terminate()
        child.communicate(timeout=20)
