"""The fault-and-load test: 500 concurrent runs on loopback, with faults in their streams.

No timing is asserted: only the promises (every run ends typed, no tool runs twice or
for a discarded call, every conversation is consistent, nothing is left open).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentstream.bench._loadtest import _answered, load_test
from agentstream.cli import main

pytestmark = pytest.mark.anyio


async def test_500_concurrent_runs_with_faults_keep_every_promise() -> None:
    report = await load_test(500, fault_rate=0.08, seed=1)

    assert report.peak_concurrent == 500
    assert report.fault_share >= 0.05
    assert set(report.faulted) == {
        "drop", "error payload", "http 429", "http 503", "malformed", "stall"
    }  # fmt: skip
    assert report.retries > 0
    assert report.untyped == []
    assert report.hung == 0
    assert report.completed + sum(report.failed.values()) == 500
    assert report.completed >= 450  # only the runs without retries may fail
    assert report.tool_runs >= 7 * report.completed  # parallel calls over several steps
    assert report.ran_twice == 0
    assert report.ran_unrecorded == 0
    assert report.inconsistent == 0
    assert report.open_tasks == 0
    assert report.open_sockets in (0, None)
    assert report.ok


@pytest.mark.parametrize(
    ("messages", "consistent"),
    [
        pytest.param(
            [
                {"role": "user", "content": "q"},
                {"role": "assistant", "tool_calls": [{"id": "a"}, {"id": "b"}]},
                {"role": "tool", "tool_call_id": "a"},
                {"role": "tool", "tool_call_id": "b"},
                {"role": "assistant", "content": "done"},
            ],
            True,
            id="answered",
        ),
        pytest.param([{"role": "assistant", "tool_calls": [{"id": "a"}]}], False, id="unanswered"),
        pytest.param(
            [
                {"role": "assistant", "tool_calls": [{"id": "a"}, {"id": "b"}]},
                {"role": "tool", "tool_call_id": "b"},
                {"role": "tool", "tool_call_id": "a"},
            ],
            False,
            id="out-of-order",
        ),
        pytest.param(
            [
                {"role": "assistant", "tool_calls": [{"id": "a"}]},
                {"role": "tool", "tool_call_id": "a"},
                {"role": "assistant", "tool_calls": [{"id": "a"}]},
                {"role": "tool", "tool_call_id": "a"},
            ],
            False,
            id="id-twice",
        ),
    ],
)
def test_the_consistency_check_catches_broken_conversations(
    messages: list[dict[str, Any]], consistent: bool
) -> None:
    assert _answered(messages)[0] is consistent


def test_the_command_prints_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load-test", "--runs", "20", "--fault-rate", "0.2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["runs"] == 20
    assert report["ok"] is True
    assert report["completed"] + sum(report["failed"].values()) == 20
