"""`Agent(prepare_step=...)`: one step's model, tools, `tool_choice` and instructions, on
both wires, checked in the request bodies the scripted model received."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from agentstream import (
    Agent,
    RunError,
    SetupError,
    StepContext,
    StepOverrides,
    StepPrepared,
    StepStarted,
    ToolCallInvalid,
    ToolFinished,
    tool,
)
from agentstream.testing import Reply, ScriptedModel, ToolCall

from ._helpers import of, run_events

pytestmark = pytest.mark.anyio


class Three:
    """Tools `a`, `b` and `c`, recording which ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []

        @tool
        def a() -> str:
            """Tool a."""
            self.ran.append("a")
            return "A"

        @tool
        def b() -> str:
            """Tool b."""
            self.ran.append("b")
            return "B"

        @tool
        def c() -> str:
            """Tool c."""
            self.ran.append("c")
            return "C"

        self.tools = [a, b, c]


def first_step_only(context: StepContext) -> StepOverrides | None:
    if context.step != 1:
        return None
    return StepOverrides(model="small", tools=["a"], tool_choice="a", instructions="Use a.")


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_a_step_with_a_forced_tool_choice_and_two_tools_hidden(api: str) -> None:
    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("a", id="c1"), ToolCall("b", id="c2")]), Reply("Done.")]
    )
    three = Three()
    events, run = await run_events(
        model, *three.tools, api=api, instructions="Be brief.", prepare_step=first_step_only
    )

    first, second = model.requests
    assert [t["function"]["name"] for t in first.tools] == ["a"]
    assert first.model == "small"
    if api == "chat":
        assert first.body["tool_choice"] == {"type": "function", "function": {"name": "a"}}
        assert first.messages[0] == {"role": "system", "content": "Be brief.\n\nUse a."}
    else:
        assert first.body["tool_choice"] == {"type": "function", "name": "a"}
        assert first.body["instructions"] == "Be brief.\n\nUse a."
    # The next step is the agent's own again.
    assert [t["function"]["name"] for t in second.tools] == ["a", "b", "c"]
    assert "tool_choice" not in second.body
    assert second.model == "m"
    assert second.messages[0]["content"] == "Be brief."
    # A call to a tool the step did not offer is refused as unknown, and never runs.
    assert three.ran == ["a"]
    (refused,) = of(events, ToolCallInvalid)
    assert (refused.name, refused.id) == ("b", "c2")
    assert refused.error.startswith("unknown tool 'b'; the available tools are: a")
    (prepared,) = of(events, StepPrepared)
    assert (prepared.step, prepared.model, prepared.tools) == (1, "small", ("a",))
    assert (prepared.tool_choice, prepared.instructions) == ("a", "Use a.")
    order = [type(event) for event in events]
    assert order.index(StepPrepared) < order.index(StepStarted)
    assert run.result.stop_reason == "answer"


async def test_an_async_prepare_step_sees_each_step_and_the_run_so_far() -> None:
    seen: list[tuple[int, int, int, tuple[str, ...]]] = []

    async def shape(context: StepContext) -> StepOverrides | None:
        await anyio.sleep(0)
        with pytest.raises(TypeError):
            context.messages[0]["content"] = "changed"  # type: ignore[index]
        seen.append(
            (context.step, len(context.messages), context.usage.total_tokens, context.tools)
        )
        return StepOverrides(tool_choice="required") if context.step == 1 else None

    model = ScriptedModel([Reply(tool_calls=[ToolCall("a", id="c1")]), Reply("Done.")])
    three = Three()
    events, _run = await run_events(model, *three.tools, prepare_step=shape)

    assert [entry[:2] for entry in seen] == [(1, 1), (2, 3)]
    assert seen[0][2] == 0
    assert seen[1][2] > 0
    assert seen[0][3] == ("a", "b", "c")
    assert model.requests[0].body["tool_choice"] == "required"
    assert "tool_choice" not in model.requests[1].body
    assert len(of(events, StepPrepared)) == 1
    assert len(of(events, ToolFinished)) == 1


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param(StepOverrides(tools=["a", "zz"]), "does not have: zz", id="unknown-tool"),
        pytest.param(
            StepOverrides(tools=["a"], tool_choice="b"), "tool_choice", id="hidden-choice"
        ),
        pytest.param({"model": "x"}, "StepOverrides or None", id="not-overrides"),
    ],
)
async def test_overrides_that_cannot_apply_are_a_setup_error(overrides: Any, error: str) -> None:
    model = ScriptedModel([Reply("Hi.")])
    with pytest.raises(SetupError, match=error):
        await run_events(model, *Three().tools, prepare_step=lambda context: overrides)
    assert model.requests == []


async def test_a_prepare_step_that_raises_fails_the_run_with_a_run_error() -> None:
    def broken(context: StepContext) -> None:
        raise KeyError("oops")

    model = ScriptedModel([Reply("Hi.")])
    with pytest.raises(RunError, match="prepare_step failed at step 1: KeyError"):
        await run_events(model, prepare_step=broken)
    assert model.requests == []


async def test_prepare_step_must_be_a_function() -> None:
    with pytest.raises(SetupError, match="prepare_step"):
        Agent(client=ScriptedModel([]).async_client(), model="m", prepare_step="no")  # type: ignore[arg-type]
