"""Guardrails: input checks beside the first request that can stop a run before any tool
starts, and output checks on the final answer that can stop it or ask once more."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from agentstream import (
    Agent,
    GuardrailChecked,
    GuardrailTripped,
    InputGuardrail,
    OutputGuardrail,
    Session,
    SetupError,
    StepStarted,
    ToolCallReady,
    ToolStarted,
    tool,
)
from agentstream.stores import MemoryStore
from agentstream.testing import Fault, Reply, ScriptedModel, ToolCall

from ._helpers import Recorder, of, run_events

pytestmark = pytest.mark.anyio


def prompt_of(messages: tuple[Mapping[str, Any], ...]) -> str:
    return str(messages[-1]["content"])


@pytest.mark.parametrize("early", [False, True], ids=["after-the-response", "early-tools"])
async def test_an_input_guardrail_stops_the_run_before_its_tool_starts(early: bool) -> None:
    ran: list[str] = []

    @tool(early=early)
    def act() -> str:
        """Act."""
        ran.append("act")
        return "ok"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("act", id="c1")]), Reply("Done.")])

    async def policy(messages: tuple[Mapping[str, Any], ...]) -> GuardrailTripped | None:
        # It runs beside the first request: that request is sent while it still checks.
        with anyio.fail_after(10):
            while not model.requests:
                await anyio.sleep(0.001)
        if "secret" in prompt_of(messages):
            return GuardrailTripped("asks for a secret")
        return None

    agent = Agent(
        client=model.async_client(),
        model="m",
        tools=[act],
        early_tools=early,
        guardrails=[InputGuardrail("policy", policy)],
    )
    events: list[Any] = []
    with anyio.fail_after(20):
        async with agent.stream("tell me the secret") as run:
            async for event in run:
                events.append(event)

    result = run.result
    assert ran == []
    assert of(events, ToolStarted) == []
    assert of(events, ToolCallReady) == []
    assert len(model.requests) == 1
    assert result.stop_reason == "guardrail"
    assert result.guardrail == GuardrailTripped("asks for a secret", False, "policy", "input")
    assert result.output == ""
    assert [m["role"] for m in result.messages] == ["user"]  # the response was not kept
    (checked,) = of(events, GuardrailChecked)
    assert (checked.step, checked.stage, checked.name) == (1, "input", "policy")
    assert checked.tripped == result.guardrail


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_a_tripped_input_guardrail_cuts_the_first_response_short(api: str) -> None:
    # The response stalls for a minute after its first chunk: the run ends long before,
    # because the guardrail's verdict stops the reading (else `fail_after` fails the test).
    stalled = Reply(
        "A long answer that never ends.",
        tool_calls=[ToolCall("act", id="c1")],
        fault=Fault(stall_after=1, stall_seconds=60),
    )
    model = ScriptedModel([stalled])
    recorder = Recorder()

    async def refuse(messages: tuple[Mapping[str, Any], ...]) -> GuardrailTripped:
        with anyio.fail_after(10):
            while not model.requests:  # tripped while the response streams
                await anyio.sleep(0.001)
        return GuardrailTripped("off topic")

    events, run = await run_events(
        model, recorder.tool, api=api, guardrails=[InputGuardrail("topic", refuse)]
    )
    assert run.result.stop_reason == "guardrail"
    assert run.result.guardrail.message == "off topic"
    assert not recorder.ran
    assert of(events, ToolCallReady) == []
    assert [m["role"] for m in run.result.messages] == ["user"]


async def test_a_run_left_before_its_input_verdict_is_checked_again_when_resumed() -> None:
    checks: list[int] = []

    async def slow_then_strict(messages: tuple[Mapping[str, Any], ...]) -> GuardrailTripped:
        checks.append(len(messages))
        if len(checks) == 1:
            await anyio.sleep_forever()  # the first run is left before its verdict
        return GuardrailTripped("not allowed")

    recorder = Recorder()
    model = ScriptedModel([Reply(tool_calls=[ToolCall("act", id="c1")])] * 2)
    agent = Agent(
        client=model.async_client(),
        model="m",
        tools=[recorder.tool],
        guardrails=[InputGuardrail("strict", slow_then_strict)],
    )
    session = Session(MemoryStore(), "s")
    with anyio.fail_after(20):
        async with agent.stream("go", session=session) as run:
            async for event in run:
                if isinstance(event, StepStarted):
                    break  # the process dies during the first request
        result = await agent.resume(session=session)

    assert checks == [1, 1]
    assert result.stop_reason == "guardrail"
    assert not recorder.ran


async def test_a_run_resumed_after_its_first_step_does_not_check_its_input_again() -> None:
    checks: list[int] = []

    def count(messages: tuple[Mapping[str, Any], ...]) -> None:
        checks.append(len(messages))

    @tool(needs_approval=True)
    def act() -> str:
        """Act."""
        return "ok"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("act", id="c1")]), Reply("Done.")])
    agent = Agent(
        client=model.async_client(),
        model="m",
        tools=[act],
        guardrails=[InputGuardrail("count", count)],
    )
    paused = await agent.run("go")
    assert paused.stop_reason == "approval_required"
    assert paused.state is not None
    result = await agent.resume(paused.state.to_json(), approvals={"c1": True})
    assert result.output == "Done."
    assert checks == [1]


async def test_input_guardrails_that_pass_let_the_run_go_on() -> None:
    seen: list[str] = []

    def sync_check(messages: tuple[Mapping[str, Any], ...]) -> None:
        seen.append(prompt_of(messages))  # a sync check runs in a worker thread

    async def async_check(messages: tuple[Mapping[str, Any], ...]) -> None:
        return None

    recorder = Recorder()
    model = ScriptedModel([Reply(tool_calls=[ToolCall("act", id="c1")]), Reply("Done.")])
    guards = [InputGuardrail("one", sync_check), InputGuardrail("two", async_check)]
    events, run = await run_events(model, recorder.tool, guardrails=guards)

    assert seen == ["go"]
    assert recorder.calls == 1
    assert run.result.stop_reason == "answer"
    assert run.result.guardrail is None
    checked = of(events, GuardrailChecked)
    assert [(c.name, c.tripped) for c in checked] == [("one", None), ("two", None)]


async def test_a_guardrail_that_raises_trips_without_telling_its_internals() -> None:
    def broken(messages: tuple[Mapping[str, Any], ...]) -> None:
        raise ValueError("/etc/secret/path")

    recorder = Recorder()
    model = ScriptedModel([Reply(tool_calls=[ToolCall("act", id="c1")])])
    _, run = await run_events(model, recorder.tool, guardrails=[InputGuardrail("x", broken)])

    assert not recorder.ran
    assert run.result.stop_reason == "guardrail"
    assert run.result.guardrail.message == "the guardrail failed: ValueError"


def no_bad_words(output: Any) -> GuardrailTripped | None:
    if "darn" in str(output):
        return GuardrailTripped("no bad words", retry=True)
    return None


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_an_output_guardrail_asks_for_one_more_answer_and_the_model_is_told_why(
    api: str,
) -> None:
    model = ScriptedModel([Reply("Oh darn, rain."), Reply("Rain, sadly.")])
    guard = OutputGuardrail("clean", no_bad_words)
    events, run = await run_events(model, api=api, guardrails=[guard])

    assert run.result.output == "Rain, sadly."
    assert run.result.stop_reason == "answer"
    told = model.requests[1].messages
    assert [(m["role"], m["content"]) for m in told[-2:]] == [
        ("assistant", "Oh darn, rain."),
        ("user", "Your answer was not accepted (clean): no bad words. Answer again."),
    ]
    checked = of(events, GuardrailChecked)
    assert [(c.step, c.stage, c.tripped is None) for c in checked] == [
        (1, "output", False),
        (2, "output", True),
    ]


async def test_a_second_trip_after_the_one_retry_stops_the_run() -> None:
    model = ScriptedModel([Reply("darn"), Reply("darn again"), Reply("never asked")])
    _, run = await run_events(model, guardrails=[OutputGuardrail("clean", no_bad_words)])

    assert len(model.requests) == 2
    assert run.result.stop_reason == "guardrail"
    assert run.result.output == ""
    assert run.result.guardrail == GuardrailTripped("no bad words", True, "clean", "output")


class Weather(BaseModel):
    city: str
    sky: str


async def test_an_output_guardrail_sees_the_typed_value() -> None:
    seen: list[Any] = []

    async def only_paris(output: Any) -> GuardrailTripped | None:
        seen.append(output)
        return None if output.city == "Paris" else GuardrailTripped("Paris only")

    model = ScriptedModel([Reply('{"city": "Rome", "sky": "clear"}')])
    _, run = await run_events(
        model, output_type=Weather, guardrails=[OutputGuardrail("paris", only_paris)]
    )

    assert seen == [Weather(city="Rome", sky="clear")]
    assert run.result.stop_reason == "guardrail"
    assert run.result.output is None


@pytest.mark.parametrize(
    "guardrails",
    [
        pytest.param("x", id="a-string"),
        pytest.param([lambda messages: None], id="a-bare-function"),
        pytest.param([InputGuardrail("", lambda messages: None)], id="no-name"),
    ],
)
def test_guardrails_of_the_wrong_kind_are_refused(guardrails: Any) -> None:
    with pytest.raises(SetupError, match="guardrail"):
        Agent(client=ScriptedModel([]).async_client(), model="m", guardrails=guardrails)
