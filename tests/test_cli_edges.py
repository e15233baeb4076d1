"""The rough edges a new user meets at the command line: Ctrl-C during a slow sync tool,
exit statuses for bad setup, output closed early, mistyped flags."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLAT_OUT = ("--ttft", "0", "--tps", "0", "--no-color")
SLOW_SYNC = '''
import time
from agentstream import tool

@tool
def slow_lookup(city: str) -> str:
    """Look up a city, very slowly."""
    time.sleep(60)
    return city
'''


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}


def spawn(*args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "agentstream", *args, *FLAT_OUT],
        cwd=ROOT, env=env(), stdin=stdin, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for_call(process: subprocess.Popen[str], marker: str) -> list[str]:
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            return seen
    pytest.fail(f"never saw {marker!r}: {seen} {process.communicate()}")


@pytest.mark.parametrize("mode", ["text", "json"])
def test_ctrl_c_during_a_hung_sync_tool_ends_the_cli_at_once(mode: str, tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(SLOW_SYNC)
    extra = ["--json"] if mode == "json" else []
    process = spawn("--tools", str(tmp_path / "slow.py"), *extra, "-p", "slow lookup of Paris")
    try:
        wait_for_call(process, "tool_started" if mode == "json" else "-> slow_lookup")
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        began = time.monotonic()
        out, err = process.communicate(timeout=10)
        took = time.monotonic() - began
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == 130, err
    assert took < 5  # the tool sleeps 60 s; the process does not wait for it
    assert "Traceback" not in err
    assert "Exception ignored" not in err
    if mode == "json":
        last = json.loads(out.splitlines()[-1])
        assert last == {"type": "run_cancelled", "reason": "interrupted"}
    assert err.splitlines()[-1] == "interrupted"  # a diagnostic: on stderr


def test_ctrl_c_twice_in_chat_mode_ends_quietly(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(SLOW_SYNC)
    process = spawn("--tools", str(tmp_path / "slow.py"), stdin=subprocess.PIPE)
    try:
        assert process.stdin is not None
        process.stdin.write("slow lookup of Paris\n")
        process.stdin.flush()
        wait_for_call(process, "-> slow_lookup")
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)  # stops the turn; the chat goes on
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)  # at the prompt: leave
        _out, err = process.communicate(timeout=10)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err
    assert "Exception ignored" not in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(["--base-url", "localhost:8000"], "must be an http(s) URL", id="bad-url"),
        pytest.param(["--base-url", "http://:99x/v1"], "must be an http(s) URL", id="bad-port"),
        pytest.param(["--tools", "x" * 300], "cannot read it", id="long-tools-path"),
        pytest.param(["--resume"], "--resume continues a session", id="resume-alone"),
    ],
)
def test_bad_setup_exits_2_with_one_line(args: list[str], words: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agentstream", *args, "-p", "hi", *FLAT_OUT],
        cwd=ROOT, env=env(), capture_output=True, text=True, timeout=60, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert words in done.stderr
    assert "Traceback" not in done.stderr


def test_a_tools_file_that_exits_is_bad_setup(tmp_path: Path) -> None:
    (tmp_path / "exits.py").write_text("raise SystemExit(0)\n")
    done = subprocess.run(
        [sys.executable, "-m", "agentstream", "--tools", str(tmp_path / "exits.py"), "-p", "hi"],
        cwd=ROOT, env=env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "called exit(0) while being imported" in done.stderr


def test_serve_model_on_a_port_in_use_exits_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "agentstream", "serve-model", "--port", str(port)],
            cwd=ROOT, env=env(), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 2
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_output_closed_early_ends_quietly() -> None:
    reader = subprocess.Popen(["head", "-n", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    done = subprocess.run(
        [sys.executable, "-m", "agentstream", "--json", "-p", "What is 17 * 23?", *FLAT_OUT],
        cwd=ROOT, env=env(), stdout=reader.stdin, stderr=subprocess.PIPE, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert reader.stdin is not None
    assert reader.stdout is not None
    reader.stdin.close()
    first = reader.stdout.read()
    reader.stdout.close()
    reader.wait(timeout=10)
    assert json.loads(first)["type"] == "run_started"
    assert "Traceback" not in done.stderr
    assert "Exception ignored" not in done.stderr


@pytest.mark.parametrize("typo", ["--api-k", "--jso", "--max-step"])
def test_abbreviated_or_unknown_flags_are_errors(typo: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agentstream", typo, "1", "-p", "hi"],
        cwd=ROOT, env=env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
