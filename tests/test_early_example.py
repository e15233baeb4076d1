"""`examples/early_tools.py`: early starts move the slow lookup ahead of the long call.

Structural, not timed: with early starts the lookup's `ToolStarted` comes before the
stream's last piece (the long call's last `ToolCallDelta`), and it finishes before the
step does; without them it comes after every piece.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentstream import Event, RunFinished, StepFinished, ToolCallDelta, ToolFinished, ToolStarted
from examples.early_tools import ITINERARY, run_once

pytestmark = pytest.mark.anyio


def _tool(events: list[Event], kind: type[ToolStarted | ToolFinished], name: str) -> int:
    return next(i for i, e in enumerate(events) if isinstance(e, kind) and e.name == name)


@pytest.mark.parametrize("early", [pytest.param(True, id="early"), pytest.param(False, id="late")])
async def test_the_lookup_starts_before_the_long_call_has_streamed_only_when_early(
    early: bool,
) -> None:
    events = [event for _, event in await run_once(early, ttft=0.0, tps=5000.0)]
    started = _tool(events, ToolStarted, "search_fares")
    last_piece = max(i for i, e in enumerate(events) if isinstance(e, ToolCallDelta))
    assert (started < last_piece) is early
    pieces_after_start = sum(isinstance(e, ToolCallDelta) for e in events[started:])
    if early:
        assert pieces_after_start > 100  # most of the long call streamed while it ran
    else:
        assert pieces_after_start == 0
    finished = _tool(events, ToolFinished, "search_fares")
    step_end = next(i for i, e in enumerate(events) if isinstance(e, StepFinished))
    assert finished < step_end
    result = events[-1]
    assert isinstance(result, RunFinished)
    saved = [e for e in events if isinstance(e, ToolFinished) and e.name == "save_itinerary"]
    assert saved[0].output == f"saved {len(ITINERARY)} characters"
    assert "120 EUR" in result.result.output


def test_the_script_prints_both_runs() -> None:
    script = Path(__file__).parent.parent / "examples" / "early_tools.py"
    done = subprocess.run(
        [sys.executable, str(script), "--ttft", "0", "--tps", "5000"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(script.parent.parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["early_tools=False", "early_tools=True"]
    assert all("lookup started" in line and "run finished" in line for line in lines)
