"""Tools for the durable web server of tests/test_web_durable.py (`--tools` loads them).

Each writes `start NAME TOPIC` before its work and `end NAME TOPIC` after it to the file
named by `LEDGER`; `slow` works `TOOL_SLEEP` seconds (sync, in a thread: cancelled, it
sees `ctx.cancelled`, notes `stopped slow TOPIC` and returns), `wait` waits as long
(async: a cancelled `wait` notes `cancelled wait TOPIC`). They are idempotent: a kill
cuts them and the recovery runs them again.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio

from agentstream import ToolContext, tool


def _note(line: str) -> None:
    with Path(os.environ["LEDGER"]).open("a") as ledger:
        ledger.write(line + "\n")
        ledger.flush()
        os.fsync(ledger.fileno())


@tool(idempotent=True)
def record(topic: str) -> str:
    """Record a topic."""
    _note(f"start record {topic}")
    _note(f"end record {topic}")
    return f"recorded {topic}"


@tool(idempotent=True)
def slow(topic: str, ctx: ToolContext) -> str:
    """Slow work on a topic."""
    _note(f"start slow {topic}")
    end = time.monotonic() + float(os.environ.get("TOOL_SLEEP", "0"))
    while time.monotonic() < end:
        if ctx.cancelled:
            _note(f"stopped slow {topic}")
            return "stopped"
        time.sleep(min(0.05, max(0.0, end - time.monotonic())))
    _note(f"end slow {topic}")
    return f"worked on {topic}"


@tool(needs_approval=True)
def book(topic: str) -> str:
    """Book something (a person approves it first)."""
    _note(f"start book {topic}")
    _note(f"end book {topic}")
    return f"booked {topic}"


@tool(idempotent=True)
async def wait(topic: str) -> str:
    """Wait on a topic."""
    _note(f"start wait {topic}")
    try:
        await anyio.sleep(float(os.environ.get("TOOL_SLEEP", "0")))
    except anyio.get_cancelled_exc_class():
        _note(f"cancelled wait {topic}")
        raise
    _note(f"end wait {topic}")
    return f"waited on {topic}"
