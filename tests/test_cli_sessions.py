"""The command line's sessions and approvals, as a user would try them: approve or deny on
a real terminal (a pty), deny with no terminal, kill the process mid-tool and `--resume`."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLAT_OUT = ("--ttft", "0", "--tps", "0", "--no-color")
BOOK = "Book a hotel in Rome for 2 nights"

SLOW_TOOLS = '''
import os, time
from pathlib import Path
from agentstream import tool

@tool
def archive_files(folder: str) -> str:
    """Archive the files of a folder (slow).

    Args:
        folder: The folder to archive, e.g. "photos".
    """
    with Path(os.environ["LEDGER"]).open("a") as f:
        f.write("archive started\\n")
    time.sleep(float(os.environ.get("SLOW", "0")))
    return "archived"
'''


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return {**base, **extra}


def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentstream", *args, *FLAT_OUT],
        cwd=ROOT, env=env(**extra), capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def on_a_terminal(args: list[str], answers: list[str]) -> str:
    """Run the CLI with a pty as its standard input, answering each question in turn."""
    main, secondary = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "agentstream", *args, *FLAT_OUT],
        cwd=ROOT, env=env(), stdin=secondary, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    os.close(secondary)
    assert child.stdout is not None
    out = child.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + 60
    try:
        for answer, question in zip(answers, [b"[y/n]", b"reason"], strict=False):
            # The question goes to stderr (merged into stdout here): wait for it, answer.
            while question not in seen:
                assert time.monotonic() < deadline, seen
                ready, _, _ = select.select([out], [], [], 0.1)
                if ready:
                    seen += os.read(out, 4096)
            os.write(main, answer.encode() + b"\n")
        while chunk := os.read(out, 4096):
            seen += chunk
        child.wait(timeout=60)
    finally:
        os.close(main)
        child.kill()
        child.wait()
        child.stdout.close()
    return seen.decode()


def test_no_terminal_denies_with_a_reason_that_says_so(tmp_path: Path) -> None:
    done = cli("--session", str(tmp_path / "s.db"), "-p", BOOK)
    assert done.returncode == 0, done.stderr
    assert "book_hotel: denied: no terminal to ask on" in done.stdout
    assert "Booked" not in done.stdout


def test_approve_yes_and_no(tmp_path: Path) -> None:
    yes = cli("--approve", "yes", "-p", BOOK)
    assert "confirmation" in yes.stdout
    no = cli("--approve", "no", "-p", BOOK)
    assert "denied by --approve no" in no.stdout
    assert "confirmation" not in no.stdout


def test_approve_on_the_terminal() -> None:
    out = on_a_terminal(["-p", BOOK], ["y"])
    assert "allow book_hotel" in out
    assert "book_hotel: approved" in out
    assert "confirmation" in out


def test_deny_on_the_terminal_with_a_reason() -> None:
    out = on_a_terminal(["-p", BOOK], ["n", "too pricey"])
    assert "book_hotel: denied: too pricey" in out
    assert "confirmation" not in out


def test_a_session_continues_across_invocations(tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    first = cli("--session", db, "--approve", "yes", "-p", BOOK, "--json")
    second = cli("--session", db, "--json", "-p", "What's the weather in Tokyo?")
    assert first.returncode == second.returncode == 0
    # The second run's first request carried the first conversation: more tokens in.
    assert '"prompt_tokens"' in second.stdout
    import json

    def tokens_in(out: str) -> int:
        finished = [json.loads(line) for line in out.splitlines() if '"step_finished"' in line]
        return int(finished[0]["usage"]["prompt_tokens"])

    assert tokens_in(second.stdout) > tokens_in(
        cli("--json", "-p", "What's the weather in Tokyo?").stdout
    )


def test_resume_without_session_is_bad_usage() -> None:
    done = cli("--resume", "-p", "hi")
    assert done.returncode == 2
    assert "--resume continues a session" in done.stderr


def test_kill_mid_tool_then_resume(tmp_path: Path) -> None:
    db, ledger, tools = tmp_path / "s.db", tmp_path / "ledger", tmp_path / "slow_tools.py"
    tools.write_text(SLOW_TOOLS)
    ledger.touch()
    args = ["--tools", str(tools), "--session", str(db), *FLAT_OUT]
    child = subprocess.Popen(
        [sys.executable, "-m", "agentstream", *args, "-p", "Archive the photos folder"],
        cwd=ROOT, env=env(LEDGER=str(ledger), SLOW="120"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "archive started" not in ledger.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    resumed = subprocess.run(
        [sys.executable, "-m", "agentstream", *args, "--resume"],
        cwd=ROOT, env=env(LEDGER=str(ledger)), capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=120, check=False,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert ledger.read_text().splitlines() == ["archive started"]  # not run a second time
    assert "outcome unknown" in resumed.stdout
    again = subprocess.run(
        [sys.executable, "-m", "agentstream", *args, "--resume"],
        cwd=ROOT, env=env(LEDGER=str(ledger)), capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 2
    assert "no unfinished run" in again.stderr


@pytest.mark.parametrize("flag", ["--sesion", "--aprove"])
def test_a_mistyped_flag_is_an_error(flag: str) -> None:
    done = cli(flag, "x", "-p", "hi")
    assert done.returncode == 2
    assert f"unknown flag {flag}; did you mean {flag[:3]}" in done.stderr
