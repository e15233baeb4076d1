"""`RunState`: plain JSON that round-trips exactly, refused when foreign or inconsistent,
and a loop driven by it: resuming from a saved state repeats what running straight on does.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentstream import (
    Agent,
    RunFinished,
    RunStarted,
    RunState,
    Session,
    StateError,
    Tool,
    event_to_dict,
)
from agentstream.stores import MemoryStore
from agentstream.testing import Reply, ScriptedModel

from ._streams import INDEX, load_chunks, stream_params

anyio_mark = pytest.mark.anyio


def paused_state() -> dict[str, Any]:
    """A state with a step in progress: one call answered, one waiting for approval."""
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "b", "arguments": '{"x":1}'}},
        ],
    }
    return {
        "version": 1,
        "run_id": "run_1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "first_new": 1,
        "step": 1,
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        "steps": [],
        "invalid_calls": 0,
        "calls_run": 1,
        "retries_used": 0,
        "final_only": None,
        "pending": {
            "step": 1,
            "assistant": assistant,
            "calls": [
                {
                    "id": "c1",
                    "index": 0,
                    "name": "a",
                    "arguments": "{}",
                    "status": "finished",
                    "output": "A",
                },
                {
                    "id": "c2",
                    "index": 1,
                    "name": "b",
                    "arguments": '{"x":1}',
                    "status": "awaiting_approval",
                    "output": None,
                },
            ],
            "finish_reason": "tool_calls",
            "info": {
                "step": 1,
                "finish_reason": "tool_calls",
                "usage": None,
                "time_to_first_token": 0.1,
                "duration": 0.2,
                "tokens_per_second": None,
                "tool_calls": 2,
                "tool_time": 0.0,
                "attempts": 1,
            },
        },
        "stop_reason": "approval_required",
    }


def test_a_state_round_trips_through_json_exactly() -> None:
    state = RunState.from_dict(paused_state())
    again = RunState.from_json(state.to_json())
    assert again == state
    assert again.to_json() == state.to_json()
    assert json.loads(state.to_json())["version"] == 2
    assert again.used_ids == {"c1", "c2"}


def tampered(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(paused_state())
    change(data)
    return data


def add_stray_result(data: dict[str, Any]) -> None:
    data["messages"].append({"role": "tool", "tool_call_id": "nope", "content": "x"})


def answer_nothing(data: dict[str, Any]) -> None:
    assistant = data["pending"]["assistant"]
    data["messages"] += [assistant, {"role": "user", "content": "and?"}]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        pytest.param(lambda d: d.update(version=3), "version 3", id="unknown-version"),
        pytest.param(lambda d: d.pop("version"), "version None", id="no-version"),
        pytest.param(add_stray_result, "call that does not exist", id="result-without-call"),
        pytest.param(answer_nothing, "unanswered tool call", id="unanswered-call"),
        pytest.param(
            lambda d: d["pending"]["calls"].pop(), "not the calls", id="pending-call-missing"
        ),
        pytest.param(
            lambda d: d["pending"]["calls"][0].update(status="done"),
            "unknown status",
            id="unknown-status",
        ),
        pytest.param(
            lambda d: d["pending"]["calls"][0].update(output=None),
            "has no output",
            id="finished-without-output",
        ),
        pytest.param(lambda d: d.update(step=-1), "must be a count", id="negative-step"),
        pytest.param(lambda d: d.update(first_new=9), "past the end", id="first-new"),
        pytest.param(lambda d: d.update(messages={}), "must be a list", id="messages"),
        pytest.param(lambda d: d["pending"].update(step=7), "last step", id="pending-step"),
    ],
)
def test_a_foreign_or_tampered_state_is_refused_clearly(change: Any, words: str) -> None:
    with pytest.raises(StateError, match=words):
        RunState.from_dict(tampered(change))


def test_text_that_is_not_a_state_is_refused() -> None:
    with pytest.raises(StateError, match="not JSON"):
        RunState.from_json("{")
    with pytest.raises(StateError, match="not JSON"):
        RunState.from_json("[" * 100_000)
    with pytest.raises(StateError, match="JSON object"):
        RunState.from_json("[]")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(path=st.lists(st.sampled_from(["messages", "pending", "calls", 0, 1, "status", "usage",
                                      "steps", "info", "assistant", "tool_calls", "id"]),
                     min_size=1, max_size=4),
       value=json_values)  # fmt: skip
def test_any_edit_gives_a_state_or_a_state_error(path: list[Any], value: Any) -> None:
    """Whatever is changed anywhere, the verdict is a consistent state or `StateError`."""
    data: Any = paused_state()
    target = data
    for key in path[:-1]:
        try:
            target = target[key]
        except (KeyError, IndexError, TypeError):
            return
    try:
        target[path[-1]] = value
    except (IndexError, TypeError):
        return
    try:
        state = RunState.from_dict(data)
    except StateError:
        return
    assert RunState.from_json(state.to_json()) == state


# --- resuming from any saved state -----------------------------------------------------


class Snapshots(MemoryStore):
    """Every document saved, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.history: list[str] = []

    async def save(self, key: str, document: str) -> None:
        await super().save(key, document)
        self.history.append(document)


def permissive_tools(names: set[str], ledger: list[str]) -> list[Tool]:
    def make(name: str) -> Tool:
        def handler(args: dict[str, Any]) -> str:
            ledger.append(name)
            return f"{name} done with {sorted(args)}"

        return Tool.from_schema(name, {"type": "object"}, handler, idempotent=True)

    return [make(name) for name in sorted(names)]


def called_tools(name: str) -> set[str]:
    final = INDEX[name]["final"]
    return {
        call["function"]["name"]
        for choice in final
        for call in choice["message"].get("tool_calls") or []
        if call["function"]["name"]
    }


def comparable(event: Any) -> Any:
    """An event without what differs between two runs of the same thing (timings, ids)."""
    data = event_to_dict(event)
    for key in ("duration", "time_to_first_token", "tokens_per_second", "result", "run_id",
                "response_id"):  # fmt: skip
        data.pop(key, None)
    return data


def with_calls() -> list[Any]:
    """The recordings whose response makes named tool calls."""
    return [p for p in stream_params() if p.values[0] is None or called_tools(p.values[0])]


def in_order(events: list[Any]) -> list[Any]:
    """Comparable events, the tool events of one batch sorted (parallel tools race)."""
    out: list[Any] = []
    batch: list[Any] = []
    for event in map(comparable, events):
        if event["type"] in ("tool_started", "tool_finished"):
            batch.append(event)
            continue
        out += sorted(batch, key=lambda e: (e["type"], e["index"]))
        batch = []
        out.append(event)
    return out + sorted(batch, key=lambda e: (e["type"], e["index"]))


@anyio_mark
@pytest.mark.parametrize("name", with_calls())
async def test_resuming_any_saved_state_repeats_the_straight_run(name: str) -> None:
    replies = [Reply(chunks=load_chunks(name)), Reply("All done.")]
    ledger: list[str] = []
    tools = permissive_tools(called_tools(name), ledger)
    store = Snapshots()
    straight_model = ScriptedModel(replies)
    agent = Agent(client=straight_model.async_client(), model="m", tools=tools, max_steps=4)
    events: list[Any] = []
    saves_seen: list[int] = []
    with anyio.fail_after(20):
        async with agent.stream("go", session=Session(store, "s")) as run:
            async for event in run:
                events.append(event)
                saves_seen.append(len(store.history))
    assert isinstance(events[-1], RunFinished)
    assert store.history

    compared = 0
    for number, document in enumerate(store.history, start=1):
        state = RunState.from_json(document)
        if state.finished or any(
            call.status == "running" for call in (state.pending.calls if state.pending else ())
        ):
            continue  # a finished run has nothing left; a running call is a crash case
        # The events the straight run sent after this save, and the requests it made.
        after = [
            e for e, seen in zip(events, saves_seen, strict=True)
            if seen >= number and not isinstance(e, RunStarted)  # the first save precedes it
        ]  # fmt: skip
        requests_before = sum(
            1 for e, seen in zip(events, saves_seen, strict=True)
            if seen < number and type(e).__name__ == "StepStarted"
        )  # fmt: skip
        model = ScriptedModel(replies[requests_before:])
        again = Agent(client=model.async_client(), model="m", tools=tools, max_steps=4)
        resumed: list[Any] = []
        with anyio.fail_after(20):
            async with again.resume_stream(document) as run2:
                async for event in run2:
                    resumed.append(event)
        assert isinstance(resumed[0], RunStarted)
        assert in_order(resumed[1:]) == in_order(after)
        assert [r.messages for r in model.requests] == [
            r.messages for r in straight_model.requests[requests_before:]
        ]
        assert run2.result.messages == run.result.messages
        compared += 1
    assert compared >= 2  # at least the step in progress and the step done
