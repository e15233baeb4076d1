"""The event log's parts without DBOS: events to JSON and back, and the recorder.

Events come from real runs (the real `openai` client over the scripted model's SSE
bytes); the log is a real SQLite file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dbos", reason="the dbos extra is not installed (pip install -e '.[dbos]')")

from agentstream import (
    Agent,
    Event,
    RunFailed,
    RunFinished,
    RunResult,
    StepFinished,
    StepInterrupted,
    TextDelta,
    ToolFinished,
    ToolProgress,
    Usage,
    tool,
)
from agentstream.dbos import EventLog, RecordedError
from agentstream.dbos._codec import decode, encode
from agentstream.dbos._record import Recorder
from agentstream.testing import Fault, Reply, ScriptedModel, ToolCall

pytestmark = pytest.mark.anyio


@tool
def lookup(city: str) -> str:
    """Look a city up."""
    if city == "Atlantis":
        raise ValueError("no such city")
    return f"found {city}"


def script() -> list[Reply]:
    return [
        Reply(
            "Let me look.",
            reasoning="two cities",
            tool_calls=[
                ToolCall("lookup", {"city": "Paris"}, id="c1"),
                ToolCall("lookup", {"city": "Atlantis"}, id="c2"),
                ToolCall("nowhere", {}, id="c3"),
            ],
        ),
        Reply("Paris, but ", fault=Fault(drop_after=2)),
        Reply("Paris is found; Atlantis is not."),
    ]


async def events_of(replies: list[Reply]) -> list[Event]:
    model = ScriptedModel(replies)
    agent = Agent(client=model.async_client(), model="m", tools=[lookup])
    seen: list[Event] = []
    try:
        async with agent.stream("Where?") as run:
            async for event in run:
                seen.append(event)
    except Exception:
        pass  # a failing run: its events are what is wanted
    return seen


async def test_every_event_of_a_run_comes_back_as_the_same_class_and_data() -> None:
    seen = await events_of(script())
    kinds = {type(event).__name__ for event in seen}
    assert {"StepInterrupted", "ToolFinished", "ToolCallInvalid", "RunFinished"} <= kinds
    for event in seen:
        back = decode(encode(event))
        assert type(back) is type(event)
        assert encode(back) == encode(event)  # nothing lost on the way
    finished = decode(encode(seen[-1]))
    assert isinstance(finished, RunFinished)
    assert isinstance(finished.result, RunResult)
    assert isinstance(finished.result.usage, Usage)
    assert finished.result.output == "Paris is found; Atlantis is not."
    assert finished.result.state is not None
    assert finished.result.state.messages == seen[-1].result.state.messages  # type: ignore[union-attr]


async def test_errors_come_back_as_recorded_errors_with_their_kind() -> None:
    seen = [decode(encode(event)) for event in await events_of(script())]
    failed_tool = next(e for e in seen if isinstance(e, ToolFinished) and e.error is not None)
    assert isinstance(failed_tool.error, RecordedError)
    assert failed_tool.error.kind == type(failed_tool.error).__name__ == "ValueError"
    assert "no such city" in str(failed_tool.error)
    cut = next(e for e in seen if isinstance(e, StepInterrupted))
    assert isinstance(cut.error, RecordedError)
    assert cut.retracted_text == "Paris, but "[: len(cut.retracted_text)]
    failing = await events_of([Reply(fault=Fault(status=400))])
    assert isinstance(failing[-1], RunFailed)
    back = decode(encode(failing[-1]))
    assert isinstance(back, RunFailed)
    assert isinstance(back.error, RecordedError)
    assert back.error.kind == type(failing[-1].error).__name__


async def record(log: EventLog, workflow_id: str, seen: list[Event]) -> None:
    recorder = Recorder(log, workflow_id)
    for event in seen:
        await recorder.add(event)
    await recorder.flush()


def stored(log: EventLog, workflow_id: str) -> list[tuple[int, str]]:
    return [(seq, text) for seq, text in log.read_rows(workflow_id, -1, 100_000)]


async def test_the_recorder_joins_pieces_drops_progress_and_writes_a_replay_once(
    tmp_path: Path,
) -> None:
    log = EventLog(f"sqlite:///{tmp_path / 'log.sqlite'}")
    answer = "word " * 300
    seen = await events_of([Reply(answer, piece_size=1)])
    seen.insert(2, ToolProgress(1, 0, "c", "t", 0.5, None, None))  # timing: never stored
    await record(log, "w", seen)
    rows = stored(log, "w")
    back = [decode(text) for _, text in rows]
    assert [seq for seq, _ in rows] == list(range(len(rows)))
    assert "".join(e.text for e in back if isinstance(e, TextDelta)) == answer
    deltas = sum(1 for e in seen if isinstance(e, TextDelta))
    assert sum(1 for e in back if isinstance(e, TextDelta)) < deltas / 50  # joined
    assert not any(isinstance(e, ToolProgress) for e in back)
    assert isinstance(back[-1], RunFinished)
    # A replay (after a crash) makes the same events again: nothing is added or changed.
    again: list[Any] = await events_of([Reply(answer, piece_size=1)])
    await record(log, "w", again)
    assert stored(log, "w") == rows
    assert any(isinstance(e, StepFinished) for e in back)
    log.close()


async def test_a_reader_after_a_seq_gets_the_rest(tmp_path: Path) -> None:
    log = EventLog(f"sqlite:///{tmp_path / 'log.sqlite'}", poll=0.01)
    await record(log, "w", await events_of([Reply("hello there")]))
    everything = [pair async for pair in log.read("w")]
    rest = [pair async for pair in log.read("w", after=1)]
    assert [encode(e) for _, e in rest] == [encode(e) for _, e in everything[2:]]
    assert rest[0][0] == 2
    log.close()
