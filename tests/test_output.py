"""Typed final output, end to end: the real openai client, real SSE from a scripted model."""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any, Literal

import anyio
import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict, assert_type

from agentstream import (
    FINAL_TOOL,
    Agent,
    ErrorBudgetExceeded,
    ModelError,
    OutputDelta,
    OutputInvalid,
    OutputReady,
    RunResult,
    SetupError,
    ToolCallInvalid,
    ToolFinished,
    event_to_dict,
    tool,
)
from agentstream.testing import Fault, Reply, ScriptedModel, ToolCall, offline_model, serve

from ._helpers import of

pytestmark = pytest.mark.anyio

QUESTION = "Book 3 nights in Paris for Ann Smith and Bob Jones"


class Booking(BaseModel):
    city: str
    nights: int
    guests: list[str]


@dataclasses.dataclass
class Stay:
    city: str
    nights: int


class Room(TypedDict):
    city: str
    nights: int


class Flight(BaseModel):
    kind: Literal["flight"]
    destination: str


class Hotel(BaseModel):
    kind: Literal["hotel"]
    city: str


@tool
def get_weather(location: str) -> str:
    """Get the current weather in a city."""
    return f"Sunny and 21 degrees in {location}"


BOOKING = {"city": "Paris", "nights": 3, "guests": ["Ann", "Bob"]}


async def events_of(agent: Agent[Any], prompt: str = QUESTION, **options: Any) -> list[Any]:
    events: list[Any] = []
    with anyio.fail_after(20):
        async with agent.stream(prompt, **options) as run:
            async for event in run:
                events.append(event)
    return events


# --- each output kind, both request modes, from the offline model --------------------------

WIRES = [pytest.param("chat", id="chat"), pytest.param("responses", id="responses")]

KINDS = [
    pytest.param(Booking, lambda v: isinstance(v, Booking) and v.city == "Paris", id="model"),
    pytest.param(Stay, lambda v: isinstance(v, Stay) and v.nights == 3, id="dataclass"),
    pytest.param(Room, lambda v: v == {"city": "Paris", "nights": 3}, id="typeddict"),
    pytest.param(list[Booking], lambda v: v and isinstance(v[0], Booking), id="list"),
    pytest.param(Flight | Hotel, lambda v: isinstance(v, Flight | Hotel), id="union"),
    pytest.param(int, lambda v: type(v) is int, id="int"),
    pytest.param(str, lambda v: isinstance(v, str) and v, id="str"),
]


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("mode", ["response_format", "tool"])
@pytest.mark.parametrize(("output_type", "check"), KINDS)
async def test_each_kind_in_each_mode(output_type: Any, check: Any, mode: Any, wire: Any) -> None:
    model = offline_model()
    agent = Agent[Any](
        client=model.async_client(), model="m", output_type=output_type, output_mode=mode,
        api=wire,
    )  # fmt: skip
    result = await agent.run(QUESTION)
    assert result.stop_reason == "answer"
    assert check(result.output), result.output
    body = model.requests[0].body
    if wire == "responses":
        assert "response_format" not in body
        if mode == "response_format":
            assert body["text"]["format"]["type"] == "json_schema"
            assert body["text"]["format"]["strict"] is True
            assert body["text"]["format"]["schema"]["type"] == "object"
            assert "tools" not in body
        else:
            assert "text" not in body
            assert [t["name"] for t in body["tools"]] == [FINAL_TOOL]
            assert body["tool_choice"] == {"type": "function", "name": FINAL_TOOL}
    elif mode == "response_format":
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["strict"] is True
        assert "tools" not in body
    else:
        assert "response_format" not in body
        assert [t["function"]["name"] for t in body["tools"]] == [FINAL_TOOL]
        assert body["tool_choice"] == {"type": "function", "function": {"name": FINAL_TOOL}}


async def test_the_schema_is_strict_and_wraps_what_is_not_an_object() -> None:
    model = offline_model()
    agent = Agent(client=model.async_client(), model="m", output_type=list[Booking])
    result = await agent.run(QUESTION)
    schema = model.requests[0].body["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["response"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["response"]["type"] == "array"
    assert isinstance(result.output, list)


async def test_a_free_form_dict_is_asked_without_strict() -> None:
    model = offline_model()
    agent = Agent(client=model.async_client(), model="m", output_type=dict[str, int])
    await agent.run(QUESTION)
    assert "strict" not in model.requests[0].body["response_format"]["json_schema"]


# --- scripted answers ------------------------------------------------------------------------


async def test_the_value_is_validated_and_typed() -> None:
    model = ScriptedModel([Reply(json.dumps(BOOKING))])
    agent = Agent(client=model.async_client(), model="m", output_type=Booking)
    result = await agent.run("book")
    assert_type(result, RunResult[Booking])
    assert result.output == Booking(**BOOKING)  # type: ignore[arg-type]
    assert result.messages[-1]["content"] == json.dumps(BOOKING)


async def test_output_type_per_run_overrides_the_agents() -> None:
    model = ScriptedModel([Reply('{"response": 7}'), Reply("plain text")])
    agent = Agent(client=model.async_client(), model="m")
    result = await agent.run("n?", output_type=int)
    assert_type(result.output, int)
    assert result.output == 7
    text = await agent.run("again")
    assert_type(text.output, str)
    assert text.output == "plain text"
    assert "response_format" not in model.requests[1].body


@pytest.mark.parametrize("wire", WIRES)
async def test_partial_values_stream_with_the_fields_complete_so_far(wire: Any) -> None:
    model = ScriptedModel([Reply(json.dumps(BOOKING))])
    agent = Agent(client=model.async_client(), model="m", output_type=Booking, api=wire)
    events = await events_of(agent)
    deltas = of(events, OutputDelta)
    assert len(deltas) > 3
    assert [d.completed for d in deltas][-1] == ("city", "nights", "guests")
    for before, after in itertools.pairwise(deltas):
        assert after.completed[: len(before.completed)] == before.completed
    assert deltas[-1].partial == BOOKING
    ready = of(events, OutputReady)
    assert [r.value for r in ready] == [Booking(**BOOKING)]  # type: ignore[arg-type]
    assert events.index(deltas[-1]) < events.index(ready[0])
    assert event_to_dict(ready[0])["value"] == BOOKING
    assert event_to_dict(deltas[-1]) == {
        "type": "output_delta",
        "step": 1,
        "partial": BOOKING,
        "completed": ["city", "nights", "guests"],
    }


@pytest.mark.parametrize("wire", WIRES)
async def test_partial_values_stream_in_the_tool_mode_too(wire: Any) -> None:
    reply = Reply(tool_calls=[ToolCall(FINAL_TOOL, BOOKING)], piece_size=3)
    model = ScriptedModel([reply])
    agent = Agent(
        client=model.async_client(), model="m", output_type=Booking, output_mode="tool", api=wire
    )
    events = await events_of(agent)
    deltas = of(events, OutputDelta)
    assert deltas[-1].completed == ("city", "nights", "guests")
    assert deltas[-1].partial == BOOKING
    assert of(events, OutputReady)[0].value == Booking(**BOOKING)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        pytest.param(
            '{"city": "Paris", "nights": "three", "guests": []}',
            "nights: Input should be a valid integer",
            id="wrong-type",
        ),
        pytest.param('{"city": "Paris", "guests": []}', "nights: Field required", id="missing"),
        pytest.param('{"city": "Paris", "nights"', "the answer is not valid JSON", id="not-json"),
        pytest.param("[1, 2]", "must be a JSON object", id="not-an-object"),
    ],
)
@pytest.mark.parametrize("wire", WIRES)
async def test_an_invalid_answer_goes_back_and_the_corrected_one_is_kept(
    answer: str, error: str, wire: Any
) -> None:
    model = ScriptedModel([Reply(answer), Reply(json.dumps(BOOKING))])
    agent = Agent(client=model.async_client(), model="m", output_type=Booking, api=wire)
    events = await events_of(agent)
    invalid = of(events, OutputInvalid)
    assert len(invalid) == 1
    assert error in invalid[0].error
    assert invalid[0].raw == answer
    told = model.requests[1].messages[-1]
    assert told["role"] == "user"
    assert told["content"].startswith("Invalid output:")
    assert error in told["content"]
    result = events[-1].result
    assert result.output == Booking(**BOOKING)  # type: ignore[arg-type]
    assert result.stop_reason == "answer"


async def test_an_invalid_final_call_goes_back_as_its_tool_result() -> None:
    wrong = {"city": "Paris", "nights": [], "guests": []}
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall(FINAL_TOOL, wrong)]),
            Reply(tool_calls=[ToolCall(FINAL_TOOL, BOOKING)]),
        ]
    )
    agent = Agent(client=model.async_client(), model="m", output_type=Booking, output_mode="tool")
    events = await events_of(agent)
    assert "nights: Input should be a valid integer" in of(events, OutputInvalid)[0].error
    assert of(events, ToolCallInvalid)[0].name == FINAL_TOOL
    told = model.requests[1].messages[-1]
    assert told["role"] == "tool"
    assert told["content"].startswith(f"Invalid tool call: {FINAL_TOOL}: ")
    assert events[-1].result.output == Booking(**BOOKING)  # type: ignore[arg-type]


async def test_text_in_the_tool_mode_is_sent_back() -> None:
    model = ScriptedModel(
        [Reply("Paris, 3 nights"), Reply(tool_calls=[ToolCall(FINAL_TOOL, BOOKING)])]
    )
    agent = Agent(client=model.async_client(), model="m", output_type=Booking, output_mode="tool")
    result = await agent.run("book")
    assert f"calling the {FINAL_TOOL} tool" in model.requests[1].messages[-1]["content"]
    assert result.output == Booking(**BOOKING)  # type: ignore[arg-type]


async def test_wrong_answers_count_against_the_error_budget() -> None:
    model = ScriptedModel([Reply("{}"), Reply("{}"), Reply(json.dumps(BOOKING))])
    agent = Agent(client=model.async_client(), model="m", output_type=Booking, max_invalid_calls=1)
    with pytest.raises(ErrorBudgetExceeded):
        await agent.run("book")
    assert len(model.requests) == 2


async def test_a_refusal_ends_the_run_with_the_refusal() -> None:
    model = ScriptedModel([Reply(refusal="I can't help with that.")])
    agent = Agent(client=model.async_client(), model="m", output_type=Booking)
    events = await events_of(agent)
    result = events[-1].result
    assert result.stop_reason == "refusal"
    assert result.refusal == "I can't help with that."
    assert result.output is None
    assert not of(events, OutputInvalid)
    assert len(model.requests) == 1


@pytest.mark.parametrize("mode", ["response_format", "tool"])
async def test_tools_first_then_the_typed_answer(mode: Any) -> None:
    final = (
        Reply(json.dumps(BOOKING))
        if mode == "response_format"
        else Reply(tool_calls=[ToolCall(FINAL_TOOL, BOOKING)])
    )
    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("get_weather", {"location": "Paris"})]), final]
    )
    agent = Agent(
        client=model.async_client(),
        model="m",
        tools=[get_weather],
        output_type=Booking,
        output_mode=mode,
    )
    events = await events_of(agent)
    assert [e.output for e in of(events, ToolFinished)] == ["Sunny and 21 degrees in Paris"]
    result = events[-1].result
    assert result.output == Booking(**BOOKING)  # type: ignore[arg-type]
    first = model.requests[0].body
    if mode == "tool":
        names = [t["function"]["name"] for t in first["tools"]]
        assert names == ["get_weather", FINAL_TOOL]
        assert first["tool_choice"] == "required"
        assert result.messages[-1]["content"] == "Final answer received."
    else:
        assert first["response_format"]["type"] == "json_schema"


async def test_calls_beside_a_valid_final_answer_are_not_run() -> None:
    calls = [ToolCall(FINAL_TOOL, BOOKING), ToolCall("get_weather", {"location": "Rome"})]
    model = ScriptedModel([Reply(tool_calls=calls)])
    agent = Agent(
        client=model.async_client(), model="m", tools=[get_weather], output_type=Booking,
        output_mode="tool",
    )  # fmt: skip
    events = await events_of(agent)
    assert not of(events, ToolFinished)
    assert of(events, ToolCallInvalid)[0].name == "get_weather"
    assert events[-1].result.stop_reason == "answer"


async def test_auto_falls_back_to_the_tool_when_response_format_is_refused() -> None:
    model = offline_model()
    headers = {"x-agentstream-output": "no_response_format"}
    agent = Agent(
        client=model.async_client(), model="m", output_type=Booking, extra_headers=headers
    )
    result = await agent.run(QUESTION)
    assert result.output.city == "Paris"
    first, second = (request.body for request in model.requests)
    assert "response_format" in first
    assert "response_format" not in second
    assert second["tools"][-1]["function"]["name"] == FINAL_TOOL
    await agent.run(QUESTION)  # the agent remembers: no refused request this time
    assert "response_format" not in model.requests[2].body


async def test_auto_falls_back_to_the_tool_when_text_format_is_refused() -> None:
    model = offline_model()
    headers = {"x-agentstream-output": "no_response_format"}
    agent = Agent(
        client=model.async_client(), model="m", output_type=Booking, extra_headers=headers,
        api="responses",
    )  # fmt: skip
    result = await agent.run(QUESTION)
    assert result.output.city == "Paris"
    first, second = (request.body for request in model.requests)
    assert first["text"]["format"]["type"] == "json_schema"
    assert "text" not in second
    assert second["tools"][-1]["name"] == FINAL_TOOL


async def test_response_format_mode_does_not_fall_back() -> None:
    model = ScriptedModel([Reply(fault=Fault(status=400, message="response_format unsupported"))])
    agent = Agent(
        client=model.async_client(), model="m", output_type=Booking,
        output_mode="response_format",
    )  # fmt: skip
    with pytest.raises(ModelError, match="response_format unsupported"):
        await agent.run("book")


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("fault", ["invalid", "not_json"])
@pytest.mark.parametrize("mode", ["response_format", "tool"])
async def test_the_offline_model_can_answer_wrong_first(fault: str, mode: Any, wire: Any) -> None:
    model = offline_model()
    agent = Agent(
        client=model.async_client(), model="m", output_type=Booking, output_mode=mode,
        extra_headers={"x-agentstream-output": fault}, api=wire,
    )  # fmt: skip
    events = await events_of(agent)
    assert len(of(events, OutputInvalid)) == 1
    assert events[-1].result.output.guests == ["Ann Smith", "Bob Jones"]


async def test_the_offline_model_calls_tools_then_answers_typed() -> None:
    class Report(BaseModel):
        location: str

    agent = Agent(
        client=offline_model().async_client(), model="m", tools=[get_weather], output_type=Report
    )
    events = await events_of(agent, "What's the weather in Paris?")
    assert of(events, ToolFinished)
    assert events[-1].result.output == Report(location="Paris")


async def test_over_loopback_http() -> None:
    model = ScriptedModel([Reply(json.dumps(BOOKING))])
    async with anyio.create_task_group() as tasks:
        port = await tasks.start(serve, model)
        import openai

        client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k")
        agent = Agent(client=client, model="m", output_type=Booking)
        result = await agent.run("book")
        await client.close()
        tasks.cancel_scope.cancel()
    assert result.output == Booking(**BOOKING)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["response_format", "tool"])
async def test_a_run_paused_for_approval_resumes_to_a_typed_answer(mode: Any) -> None:
    booked: list[str] = []

    @tool(needs_approval=True)
    def book(city: str) -> str:
        """Book a room."""
        booked.append(city)
        return f"booked in {city}"

    final = (
        Reply(json.dumps(BOOKING))
        if mode == "response_format"
        else Reply(tool_calls=[ToolCall(FINAL_TOOL, BOOKING)])
    )
    model = ScriptedModel([Reply(tool_calls=[ToolCall("book", {"city": "Paris"}, id="c1")]), final])
    agent = Agent(
        client=model.async_client(), model="m", tools=[book], output_type=Booking,
        output_mode=mode,
    )  # fmt: skip
    paused = await agent.run("book")
    assert paused.stop_reason == "approval_required"
    nothing_yet: object = paused.output  # typed as Booking; None until there is one
    assert nothing_yet is None
    assert paused.state is not None
    result = await agent.resume(paused.state.to_json(), approvals={"c1": True})
    assert_type(result.output, Booking)
    assert booked == ["Paris"]
    assert result.output == Booking(**BOOKING)  # type: ignore[arg-type]
    assert result.stop_reason == "answer"
    asked = model.requests[1].body
    assert ("response_format" in asked) == (mode == "response_format")


def test_a_union_agent_is_typed_as_the_union() -> None:
    agent = Agent[Flight | Hotel](
        client=ScriptedModel([]).async_client(), model="m", output_type=Flight | Hotel
    )
    assert_type(agent, Agent[Flight | Hotel])
    assert agent.output_type == Flight | Hotel


async def test_a_replaced_agent_keeps_its_output_type() -> None:
    model = ScriptedModel([Reply(tool_calls=[ToolCall(FINAL_TOOL, BOOKING)])])
    agent = Agent(client=model.async_client(), model="m", output_type=Booking, output_mode="tool")
    result = await agent.replace(model="other").run("book")
    assert result.output == Booking(**BOOKING)  # type: ignore[arg-type]
    assert model.requests[0].body["model"] == "other"


def test_the_offline_model_knows_the_agents_conventions() -> None:
    from agentstream.loop._typed import FEEDBACK_PREFIX
    from agentstream.testing import _offline_output

    assert _offline_output.FINAL_TOOL == FINAL_TOOL
    assert _offline_output.FEEDBACK == FEEDBACK_PREFIX


def test_setup_mistakes_are_caught_early() -> None:
    model = ScriptedModel([])
    client = model.async_client()
    with pytest.raises(SetupError, match="output_mode"):
        Agent(client=client, model="m", output_type=Booking, output_mode="json")  # type: ignore[arg-type]
    with pytest.raises(SetupError, match="not both"):
        Agent(
            client=client, model="m", output_type=Booking, response_format={"type": "json_object"}
        )
    with pytest.raises(SetupError, match="JSON schema"):
        Agent(client=client, model="m", output_type=anyio.Event)
