"""The embedded offline model, driven through the real openai client and the Agent."""

from __future__ import annotations

import functools
import json
from typing import Any, Literal, cast

import anyio
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionToolParam

import tools
from agentstream import (
    Agent,
    Event,
    ModelError,
    ReasoningDelta,
    Retries,
    RunResult,
    StreamError,
    TextDelta,
    ToolCallReady,
    ToolCallStarted,
    ToolFinished,
    ToolStarted,
    tool,
)
from agentstream.testing import (
    OFFLINE_MODEL_NAME,
    Fault,
    ModelRequest,
    Reply,
    ScriptedModel,
    ToolCall,
    offline_model,
    offline_policy,
    serve_model,
)
from agentstream.testing._faults import parse_fault

from ._helpers import NO_RETRIES

pytestmark = pytest.mark.anyio

WEATHER = "What's the weather in Paris and Tokyo?"
TOOL_PARAMS = cast("list[ChatCompletionToolParam]", [t.definition for t in tools.ALL_TOOLS])


@tool
def search_flights(
    origin: str, destination: str, cabin: Literal["economy", "business"] = "economy"
) -> dict[str, Any]:
    """Search for flights between two airports or cities.

    Args:
        origin: Where the flight leaves from.
        destination: Where the flight goes.
        cabin: The cabin class.
    """
    return {"flights": 3, "cheapest_eur": 420 if cabin == "business" else 120}


async def collect(
    model: ScriptedModel,
    prompt: str,
    *agent_tools: Any,
    retries: Retries = NO_RETRIES,
    **options: Any,
) -> tuple[list[Event], RunResult]:
    events: list[Event] = []
    async with model.async_client() as client:
        agent = Agent(
            client=client,
            model=OFFLINE_MODEL_NAME,
            tools=agent_tools or tools.ALL_TOOLS,
            retries=retries,
        )
        async with agent.stream(prompt, **options) as run:
            async for event in run:
                events.append(event)
    return events, run.result


def calls_of(result: RunResult, step: int = 1) -> list[tuple[str, dict[str, Any]]]:
    """The tool calls the assistant message of `step` made, as (name, arguments)."""
    assistants = [m for m in result.new_messages if m["role"] == "assistant"]
    return [
        (c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in assistants[step - 1].get("tool_calls", ())
    ]


def request(messages: list[dict[str, Any]], **body: Any) -> ModelRequest:
    """A chat completion request as the model would receive it over HTTP."""
    body = {"model": OFFLINE_MODEL_NAME, "messages": messages, "stream": True, **body}
    body.setdefault("tools", [t.definition for t in tools.ALL_TOOLS])
    content = json.dumps(body).encode()
    return ModelRequest.from_http("POST", "/v1/chat/completions", {}, content)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# --- choosing tools ----------------------------------------------------------------------


async def test_weather_in_two_cities_is_two_parallel_calls() -> None:
    events, result = await collect(offline_model(), WEATHER)

    assert calls_of(result) == [
        ("get_weather", {"location": "Paris"}),
        ("get_weather", {"location": "Tokyo"}),
    ]
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [(e.step, e.index, e.name) for e in started] == [
        (1, 0, "get_weather"),
        (1, 1, "get_weather"),
    ]
    ready = [e.arguments for e in events if isinstance(e, ToolCallReady)]
    assert ready == [
        {"location": "Paris", "unit": "celsius"},
        {"location": "Tokyo", "unit": "celsius"},
    ]
    # Both tools start before either finishes: they run side by side.
    kinds = [type(e) for e in events if isinstance(e, ToolStarted | ToolFinished)]
    assert kinds == [ToolStarted, ToolStarted, ToolFinished, ToolFinished]
    reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert "get_weather fits" in reasoning
    assert "Paris and Tokyo" in reasoning

    assert result.stop_reason == "answer"
    assert len(result.steps) == 2
    assert "Paris" in result.output
    assert "Tokyo" in result.output
    assert "17.0 celsius" in result.output  # the tool's result, used
    text = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(text) > 10  # streamed word by word


async def test_the_demo_pace_answers_in_a_few_seconds() -> None:
    # The CLI's default pace: a two-step weather run must feel live, not slow.
    _, result = await collect(offline_model(ttft=0.35, tokens_per_second=60), WEATHER)
    assert len(result.steps) == 2
    assert all((step.time_to_first_token or 0) >= 0.3 for step in result.steps)
    assert result.duration < 5


async def test_a_question_no_tool_fits_gets_a_text_answer() -> None:
    events, result = await collect(offline_model(), "Tell me a joke about pirates")

    assert not any(isinstance(e, ToolCallStarted) for e in events)
    assert len(result.steps) == 1
    assert "offline demo model" in result.output
    assert "get_weather" in result.output


async def test_a_schema_the_project_does_not_ship() -> None:
    _, result = await collect(
        offline_model(),
        "Find business flights from Lisbon to Oslo",
        *tools.ALL_TOOLS,
        search_flights,
    )

    assert calls_of(result) == [
        ("search_flights", {"origin": "Lisbon", "destination": "Oslo", "cabin": "business"})
    ]
    assert "Lisbon" in result.output
    assert "Oslo" in result.output
    assert "420" in result.output


async def test_calculator() -> None:
    _, result = await collect(offline_model(), "What is (12 + 30) * 2?")

    assert calls_of(result) == [("calculate", {"expression": "(12 + 30) * 2"})]
    assert "84" in result.output


async def test_nested_pydantic_arguments() -> None:
    prompt = "Plan a trip to Rome for Alice (34) and Bob (36) from 2025-06-01 to 2025-06-05"
    _, result = await collect(offline_model(), prompt)

    assert calls_of(result) == [
        (
            "plan_trip",
            {
                "destination": "Rome",
                "travellers": [{"name": "Alice", "age": 34}, {"name": "Bob", "age": 36}],
                "dates": {"start": "2025-06-01", "end": "2025-06-05"},
            },
        )
    ]
    assert "5 days in Rome" in result.output


async def test_tool_choice_none_never_calls() -> None:
    events, result = await collect(offline_model(), WEATHER, tool_choice="none")

    assert not any(isinstance(e, ToolCallStarted) for e in events)
    assert "get_weather" in result.output
    assert "switched off" in result.output


@pytest.mark.parametrize(
    ("tool_choice", "name"),
    [
        pytest.param("required", "get_weather", id="required"),
        pytest.param(
            {"type": "function", "function": {"name": "calculate"}}, "calculate", id="named"
        ),
    ],
)
def test_forced_tool_choice_calls_a_tool(tool_choice: Any, name: str) -> None:
    reply = offline_policy(request(user("Tell me a joke"), tool_choice=tool_choice))
    assert [call.name for call in reply.tool_calls] == [name]


def test_tool_choice_naming_an_unknown_function_is_a_bad_request() -> None:
    choice = {"type": "function", "function": {"name": "teleport"}}
    reply = offline_policy(request(user(WEATHER), tool_choice=choice))
    assert reply.fault is not None
    assert reply.fault.status == 400


async def test_one_call_per_turn_without_parallel_tool_calls() -> None:
    _, result = await collect(offline_model(), WEATHER, parallel_tool_calls=False)

    assert len(result.steps) == 3
    assert calls_of(result, 1) == [("get_weather", {"location": "Paris"})]
    assert calls_of(result, 2) == [("get_weather", {"location": "Tokyo"})]
    assert "Paris" in result.output
    assert "Tokyo" in result.output


_SAYINGS = (
    "What's the weather in Paris and Tokyo ? flights from Lisbon to Oslo business , plan a "
    "trip for Alice (34) Bob 2025-06-01 2025-06-05 time 12 + 30 * 2 ( ) sqrt of hello !"
)
_WORDS = _SAYINGS.split()
_ALL = (*tools.ALL_TOOLS, search_flights)


@given(
    words=st.lists(st.sampled_from(_WORDS), max_size=16),
    offered=st.lists(st.sampled_from(_ALL), unique_by=lambda t: t.name),
    tool_choice=st.sampled_from(["auto", "none", "required"]),
)
def test_the_policy_only_calls_offered_tools(
    words: list[str], offered: list[Any], tool_choice: str
) -> None:
    tools_sent = [t.definition for t in offered]
    reply = offline_policy(
        request(user(" ".join(words)), tools=tools_sent, tool_choice=tool_choice)
    )
    names = {t.name for t in offered}
    assert reply.fault is None
    assert all(call.name in names for call in reply.tool_calls)
    assert all(isinstance(call.arguments, dict) for call in reply.tool_calls)
    assert bool(reply.tool_calls) != bool(reply.text)
    if tool_choice == "none" or not offered:
        assert not reply.tool_calls
    elif tool_choice == "required":
        assert reply.tool_calls


def test_the_policy_is_deterministic() -> None:
    first = offline_policy(request(user(WEATHER)))
    assert first == offline_policy(request(user(WEATHER)))
    assert first.reasoning is not None
    assert first.piece_size == 4


# --- after tool results ------------------------------------------------------------------


def _after(arguments: str, result: str) -> list[dict[str, Any]]:
    function = {"name": "get_weather", "arguments": arguments}
    call = {"id": "call_x", "type": "function", "function": function}
    return [
        *user("What's the weather in Paris?"),
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_x", "content": result},
    ]


def test_an_invalid_call_is_retried_with_corrected_arguments() -> None:
    error = "Invalid tool call: get_weather: 'location' is a required property"
    reply = offline_policy(request(_after("{}", error)))

    assert reply.tool_calls == (ToolCall("get_weather", {"location": "Paris"}),)
    assert reply.reasoning is not None
    assert "rejected" in reply.reasoning


def test_an_invalid_call_it_cannot_correct_is_apologised_for() -> None:
    error = "Invalid tool call: get_weather: the service is closed"
    reply = offline_policy(request(_after('{"location": "Paris"}', error)))

    assert reply.tool_calls == ()
    assert reply.text == "Sorry, I could not run get_weather: get_weather: the service is closed"


def test_a_plain_text_result_is_quoted() -> None:
    reply = offline_policy(request(_after('{"location": "Paris"}', "Sunny, 21 degrees")))
    assert reply.text == "For location Paris, get_weather returned Sunny, 21 degrees."


# --- faults and dialects -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "error", "match"),
    [
        pytest.param("status=500", ModelError, "500", id="status"),
        pytest.param("status=429,retry_after=0", ModelError, "429", id="rate-limit"),
        pytest.param("drop_after=2", StreamError, "broke", id="drop"),
        pytest.param(
            "error_after=1,message=overloaded, try later", StreamError, "try later", id="error"
        ),
        pytest.param("statu=500", ModelError, "unknown field 'statu'", id="bad-header"),
    ],
)
async def test_header_faults(header: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        await collect(offline_model(), WEATHER, extra_headers={"x-agentstream-fault": header})


@pytest.mark.parametrize("dialect", ["mistral", "ollama", "openai"])
async def test_dialect_header(dialect: str) -> None:
    model = offline_model()
    _, result = await collect(model, WEATHER, extra_headers={"x-agentstream-dialect": dialect})

    assert [name for name, _ in calls_of(result)] == ["get_weather", "get_weather"]
    assert "Tokyo" in result.output
    assert model.requests[0].headers["x-agentstream-dialect"] == dialect


async def test_unknown_dialect_is_a_bad_request() -> None:
    with pytest.raises(ModelError, match="400"):
        await collect(offline_model(), WEATHER, extra_headers={"x-agentstream-dialect": "cobol"})


async def test_fault_every_nth_response() -> None:
    model = offline_model(fault=Fault(status=503), fault_every=2)
    with pytest.raises(ModelError, match="503"):
        await collect(model, WEATHER)  # the second request, the answer, fails
    assert len(model.requests) == 2
    _, result = await collect(model, "hello")  # the third
    assert "offline demo model" in result.output
    with pytest.raises(ModelError, match="503"):
        await collect(model, "hello")  # the fourth


def test_fault_every_needs_a_fault() -> None:
    with pytest.raises(ValueError, match="fault_every"):
        offline_model(fault_every=3)


@pytest.mark.parametrize(
    ("value", "fault"),
    [
        pytest.param("status=429,retry_after=1", Fault(status=429, retry_after=1.0), id="status"),
        pytest.param(" drop_after = 3 ", Fault(drop_after=3), id="spaces"),
        pytest.param("no_done", Fault(no_done=True), id="flag"),
        pytest.param(
            "stall_after=2,stall_seconds=0.5,message=a, b",
            Fault(stall_after=2, stall_seconds=0.5, message="a, b"),
            id="message-last",
        ),
    ],
)
def test_parse_fault(value: str, fault: Fault) -> None:
    assert parse_fault(value) == fault


@pytest.mark.parametrize(
    ("value", "match"),
    [
        pytest.param("", "no fault fields", id="empty"),
        pytest.param("status", "needs a value", id="no-value"),
        pytest.param("status=abc", "integer", id="not-int"),
        pytest.param("stall_seconds=inf", "finite", id="infinite"),
        pytest.param("status=500,status=502", "twice", id="twice"),
        pytest.param("message=x,status=500x", None, id="message-eats-the-rest"),
        pytest.param("status=200", "HTTP error status", id="fault-check"),
        pytest.param("drop_after=1,error_after=2", "at most one", id="two-endings"),
    ],
)
def test_parse_fault_errors(value: str, match: str | None) -> None:
    if match is None:
        assert parse_fault(value) == Fault(message="x,status=500x")
        return
    with pytest.raises(ValueError, match=match):
        parse_fault(value)


# --- over HTTP ---------------------------------------------------------------------------


async def test_serve_model_answers_the_real_client_with_streamed_tool_calls() -> None:
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_model, port=0))
        client = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="offline", max_retries=0
        )
        try:
            models = await client.models.list()
            assert [m.id for m in models.data] == [OFFLINE_MODEL_NAME]
            stream = await client.chat.completions.create(
                model=OFFLINE_MODEL_NAME,
                messages=[{"role": "user", "content": WEATHER}],
                tools=TOOL_PARAMS,
                stream=True,
            )
            arguments: dict[int, str] = {}
            names: dict[int, str] = {}
            pieces = 0
            async for chunk in stream:
                for call in chunk.choices[0].delta.tool_calls or () if chunk.choices else ():
                    pieces += 1
                    if call.function and call.function.name:
                        names[call.index] = call.function.name
                    if call.function and call.function.arguments:
                        arguments[call.index] = (
                            arguments.get(call.index, "") + call.function.arguments
                        )
        finally:
            await client.close()
        tg.cancel_scope.cancel()

    assert names == {0: "get_weather", 1: "get_weather"}
    assert [json.loads(arguments[i]) for i in (0, 1)] == [
        {"location": "Paris"},
        {"location": "Tokyo"},
    ]
    assert pieces > 4  # in small pieces, not whole


async def test_a_non_streaming_request() -> None:
    async with offline_model().async_client() as client:
        completion = await client.chat.completions.create(
            model=OFFLINE_MODEL_NAME,
            messages=[{"role": "user", "content": "What is 6 * 7?"}],
            tools=TOOL_PARAMS,
        )
    message = completion.choices[0].message
    calls = [
        (call.function.name, json.loads(call.function.arguments))
        for call in message.tool_calls or ()
        if call.type == "function"
    ]
    assert calls == [("calculate", {"expression": "6 * 7"})]


def test_a_reply_is_a_reply() -> None:
    assert isinstance(offline_policy(request(user("hello"), tools=[])), Reply)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        pytest.param(
            "What's the weather and the local time in Paris and Tokyo?",
            {("get_weather", "Paris"), ("get_weather", "Tokyo"),
             ("current_time", "Paris"), ("current_time", "Tokyo")},
            id="shared-list-goes-to-every-tool",
        ),
        pytest.param(
            "What's the weather in Paris and the local time in Tokyo?",
            {("get_weather", "Paris"), ("current_time", "Tokyo")},
            id="interleaved-places-go-to-the-nearest-tool",
        ),
    ],
)  # fmt: skip
def test_places_shared_between_tools(prompt: str, expected: set[tuple[str, str]]) -> None:
    request_tools = [t.definition for t in (tools.get_weather, tools.current_time)]
    reply = offline_policy(
        ModelRequest(
            method="POST",
            path="/v1/chat/completions",
            headers={},
            body={"model": "m", "messages": [{"role": "user", "content": prompt}],
                  "tools": request_tools},
            content=b"",
        )
    )  # fmt: skip
    made = {(c.name, next(iter(json.loads(c.arguments_json).values()))) for c in reply.tool_calls}
    assert made == expected
