"""Every script in `examples/` either runs with no argument, or says how to call it.

A script that needs arguments prints its usage on stderr and exits 2 without them, never
a traceback; the scripts that need none are run by tests/test_examples.py, and the servers
are started there too. A new example must join one of the lists below.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# Run with no argument by tests/test_examples.py (test_script_runs_as_it_is).
RUN_AS_IS = {
    "events.py",
    "mcp_tools.py",
    "minimal.py",
    "other_servers.py",
    "otel_traces.py",
    "parallel_tools.py",
    "sync_run.py",
}
# Long-running servers, their apps tested in process by tests/test_examples.py.
SERVERS = {"mcp_weather_server.py", "web_fastapi.py", "web_flask.py", "web_sse.py"}
# Run with no argument by a test of its own.
OWN_TESTS = {"early_tools.py"}  # tests/test_early_example.py
NEED_ARGUMENTS = {"postgres_store.py": "usage: python examples/postgres_store.py POSTGRES_URL"}


def run(script: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *argv], capture_output=True, text=True,
        timeout=60, env=env, check=False,
    )  # fmt: skip


def test_every_example_is_in_a_list() -> None:
    scripts = {path.name for path in EXAMPLES.glob("*.py")} - {"__init__.py"}
    assert scripts == RUN_AS_IS | SERVERS | OWN_TESTS | set(NEED_ARGUMENTS)


@pytest.mark.parametrize("argv", [pytest.param([], id="none"), pytest.param(["a", "b"], id="two")])
@pytest.mark.parametrize("script", sorted(NEED_ARGUMENTS))
def test_without_its_arguments_it_prints_usage(script: str, argv: list[str]) -> None:
    done = run(script, *argv)
    assert done.returncode == 2
    assert done.stderr.startswith(NEED_ARGUMENTS[script])
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("script", sorted(NEED_ARGUMENTS))
def test_help_prints_usage(script: str) -> None:
    done = run(script, "--help")
    assert (done.returncode, done.stderr.startswith(NEED_ARGUMENTS[script])) == (2, True)


def test_postgres_store_that_cannot_connect_says_so_in_one_line() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = run("postgres_store.py", f"postgresql://nobody@127.0.0.1:{port}/none")
    assert done.returncode == 1
    assert done.stderr.startswith("postgres_store: OperationalError: ")
    assert "Traceback" not in done.stderr
