"""The agent loop, driven through the real openai client by a scripted SSE model."""

from __future__ import annotations

import functools
import gc
import json
import threading
from typing import Any

import anyio
import anyio.from_thread
import openai
import pytest
from pydantic import BaseModel

from agentstream import (
    Agent,
    ErrorBudgetExceeded,
    Event,
    MaxStepsReached,
    ModelError,
    RunFailed,
    RunFinished,
    RunStarted,
    SetupError,
    StepFinished,
    StepStarted,
    StreamError,
    TextDelta,
    ToolCallDelta,
    ToolCallInvalid,
    ToolCallReady,
    ToolCallStarted,
    ToolContext,
    ToolError,
    ToolFinished,
    ToolStarted,
    tool,
)
from agentstream.testing import Fault, Reply, ScriptedModel, ToolCall, offline_model, serve

from ._helpers import NO_RETRIES, Recorder

pytestmark = pytest.mark.anyio


@tool
def get_weather(city: str, unit: str = "celsius") -> str:
    """Get the current weather in a city.

    Args:
        city: The city's name.
        unit: celsius or fahrenheit.
    """
    return f"Sunny and 21 degrees {unit} in {city}"


class Order(BaseModel):
    item: str
    quantity: int


@tool
async def place_order(order: Order) -> dict[str, Any]:
    """Place an order."""
    return {"ok": True, "item": order.item, "quantity": order.quantity}


def make_agent(model: ScriptedModel, *tools: Any, **options: Any) -> Agent:
    return Agent(client=model.async_client(), model="scripted", tools=tools, **options)


async def collect(agent: Agent, prompt: Any, **options: Any) -> tuple[list[Event], Any]:
    events: list[Event] = []
    async with agent.stream(prompt, **options) as run:
        async for event in run:
            events.append(event)
    return events, run.result


def tool_messages(messages: Any) -> list[tuple[str, str]]:
    return [(m["tool_call_id"], m["content"]) for m in messages if m["role"] == "tool"]


async def test_single_tool_then_answer() -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_a")]),
            Reply("It is sunny in Paris."),
        ]
    )
    events, result = await collect(make_agent(model, get_weather), "Weather in Paris?")

    assert result.output == "It is sunny in Paris."
    assert result.stop_reason == "answer"
    assert [m["role"] for m in result.messages] == ["user", "assistant", "tool", "assistant"]
    assert result.messages[1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    assert tool_messages(result.messages) == [("call_a", "Sunny and 21 degrees celsius in Paris")]
    assert result.new_messages == result.messages[1:]

    kinds = [type(e) for e in events]
    assert kinds[:3] == [RunStarted, StepStarted, ToolCallStarted]
    assert kinds[-1] is RunFinished
    ready = next(e for e in events if isinstance(e, ToolCallReady))
    assert (ready.id, ready.name, ready.arguments) == (
        "call_a",
        "get_weather",
        {"city": "Paris", "unit": "celsius"},
    )
    finished = next(e for e in events if isinstance(e, ToolFinished))
    assert finished.ok
    assert finished.output.startswith("Sunny")
    assert finished.duration >= 0
    # The second request carries the tool result and the tool definitions.
    second = model.requests[1]
    assert second.messages[-1] == {
        "role": "tool",
        "tool_call_id": "call_a",
        "content": "Sunny and 21 degrees celsius in Paris",
    }
    assert second.tools is not None
    assert second.tools[0]["function"]["name"] == "get_weather"
    assert second.body["stream"] is True
    assert second.body["stream_options"] == {"include_usage": True}


async def test_arguments_stream_live_with_partial_parses() -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("get_weather", {"city": "Rio de Janeiro"})], piece_size=3),
            Reply("ok"),
        ]
    )
    events, _ = await collect(make_agent(model, get_weather), "x")
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(deltas) > 5
    assert "".join(d.delta for d in deltas) == '{"city": "Rio de Janeiro"}'
    assert deltas[-1].partial == {"city": "Rio de Janeiro"}
    cities = [d.partial.get("city") for d in deltas if d.partial]
    assert any(c and c != "Rio de Janeiro" and "Rio de Janeiro".startswith(c) for c in cities)


async def test_parallel_tools_run_concurrently() -> None:
    """Each tool waits until both have started: only concurrent execution finishes."""
    started = 0
    both = anyio.Event()

    @tool
    async def rendezvous(name: str) -> str:
        """Meet the other call."""
        nonlocal started
        started += 1
        if started == 2:
            both.set()
        with anyio.fail_after(5):
            await both.wait()
        return f"met {name}"

    model = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("rendezvous", {"name": "a"}, id="c1"),
                    ToolCall("rendezvous", {"name": "b"}, id="c2"),
                ]
            ),
            Reply("done"),
        ]
    )
    events, result = await collect(make_agent(model, rendezvous), "go")
    assert tool_messages(result.messages) == [("c1", "met a"), ("c2", "met b")]
    kinds = [type(e) for e in events if isinstance(e, (ToolStarted, ToolFinished))]
    assert kinds[:2] == [ToolStarted, ToolStarted]


async def test_non_concurrent_tool_runs_alone() -> None:
    active = 0
    peak = 0

    async def body() -> str:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await anyio.sleep(0.01)
        active -= 1
        return "ok"

    @tool(concurrent=False)
    async def exclusive() -> str:
        """Must run alone."""
        return await body()

    @tool
    async def shared() -> str:
        """May run with others."""
        return await body()

    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("shared"), ToolCall("exclusive"), ToolCall("shared")]),
            Reply("done"),
        ]
    )
    _, result = await collect(make_agent(model, exclusive, shared), "go")
    assert peak == 1
    assert [c for _, c in tool_messages(result.messages)] == ["ok", "ok", "ok"]


async def test_tool_that_raises_reports_and_the_run_goes_on() -> None:
    @tool
    def fragile(x: int) -> int:
        """Divide by x."""
        return 10 // x

    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("fragile", {"x": 0}, id="c1")]), Reply("Sorry.")]
    )
    events, result = await collect(make_agent(model, fragile), "go")
    finished = next(e for e in events if isinstance(e, ToolFinished))
    assert isinstance(finished.error, ZeroDivisionError)
    assert finished.error.__traceback__ is not None
    assert finished.output == "ZeroDivisionError: integer division or modulo by zero"
    assert tool_messages(result.messages) == [("c1", finished.output)]
    assert result.output == "Sorry."


async def test_tool_error_sends_exactly_its_message() -> None:
    @tool
    def lookup(key: str) -> str:
        """Look a key up."""
        raise ToolError(f"no entry named {key!r}; try one of: a, b")

    model = ScriptedModel([Reply(tool_calls=[ToolCall("lookup", {"key": "z"})]), Reply("ok")])
    _, result = await collect(make_agent(model, lookup), "go")
    assert tool_messages(result.messages)[0][1] == "no entry named 'z'; try one of: a, b"


async def test_invalid_arguments_are_corrected_on_the_next_step() -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("get_weather", {"town": "Paris"}, id="bad")]),
            Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="good")]),
            Reply("Sunny."),
        ]
    )
    events, result = await collect(make_agent(model, get_weather), "go")
    invalid = next(e for e in events if isinstance(e, ToolCallInvalid))
    assert invalid.id == "bad"
    assert "city" in invalid.error
    # The model is told precisely what was wrong, then corrects itself.
    assert model.requests[1].messages[-1]["content"] == f"Invalid tool call: {invalid.error}"
    assert tool_messages(result.messages)[1] == ("good", "Sunny and 21 degrees celsius in Paris")
    assert result.output == "Sunny."


async def test_arguments_that_are_not_json() -> None:
    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("get_weather", '{"city": "Par', id="c")]), Reply("ok")]
    )
    events, _ = await collect(make_agent(model, get_weather), "go")
    invalid = next(e for e in events if isinstance(e, ToolCallInvalid))
    assert "not valid JSON" in invalid.error
    assert not any(isinstance(e, ToolStarted) for e in events)


async def test_unknown_tool() -> None:
    model = ScriptedModel([Reply(tool_calls=[ToolCall("teleport", {}, id="c")]), Reply("ok")])
    events, result = await collect(make_agent(model, get_weather), "go")
    invalid = next(e for e in events if isinstance(e, ToolCallInvalid))
    assert invalid.error == "unknown tool 'teleport'; the available tools are: get_weather"
    assert tool_messages(result.messages) == [("c", f"Invalid tool call: {invalid.error}")]


async def test_error_budget() -> None:
    model = ScriptedModel([Reply(tool_calls=[ToolCall("teleport", {})])] * 3)
    agent = make_agent(model, get_weather, max_invalid_calls=1)
    events: list[Event] = []
    with pytest.raises(ErrorBudgetExceeded):
        async with agent.stream("go") as run:
            async for event in run:
                events.append(event)
    assert isinstance(events[-1], RunFailed)
    # The conversation is consistent: every call has its answer.
    assert [m["role"] for m in run.messages] == ["user", "assistant", "tool", "assistant", "tool"]


@pytest.mark.parametrize("final_answer", [False, True])
async def test_max_steps(final_answer: bool) -> None:
    replies = [Reply(tool_calls=[ToolCall("get_weather", {"city": "X"})]) for _ in range(2)]
    model = ScriptedModel([*replies, Reply("Best I can say: sunny.")])
    agent = make_agent(model, get_weather, max_steps=2, final_answer=final_answer)
    events, result = await collect(agent, "go")
    assert sum(isinstance(e, MaxStepsReached) for e in events) == 1
    assert len(result.steps) == (3 if final_answer else 2)
    if final_answer:
        assert model.requests[2].body["tool_choice"] == "none"
        assert result.output == "Best I can say: sunny."
        assert result.messages[-1]["role"] == "assistant"
    else:
        assert result.messages[-1]["role"] == "tool"
    assert result.stop_reason == "max_steps"


async def test_length_with_a_half_written_call_is_not_executed() -> None:
    ran = False

    @tool
    def write_file(path: str, text: str) -> str:
        """Write a file."""
        nonlocal ran
        ran = True
        return "written"

    model = ScriptedModel(
        [
            Reply(
                tool_calls=[ToolCall("write_file", '{"path": "a.txt", "text": "hel', id="c")],
                finish_reason="length",
            )
        ]
    )
    events, result = await collect(make_agent(model, write_file), "go")
    assert not ran
    assert result.stop_reason == "length"
    invalid = next(e for e in events if isinstance(e, ToolCallInvalid))
    assert "token limit" in invalid.error
    assert tool_messages(result.messages) == [("c", f"Invalid tool call: {invalid.error}")]


async def test_stop_with_tool_calls_still_runs_them() -> None:
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"})], dialect="ollama"),
            Reply("Cold.", dialect="ollama"),
        ]
    )
    _, result = await collect(make_agent(model, get_weather), "go")
    assert tool_messages(result.messages)[0][1].endswith("in Oslo")
    assert result.output == "Cold."


async def test_mistral_dialect_parallel_calls() -> None:
    model = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("get_weather", {"city": "A"}),
                    ToolCall("get_weather", {"city": "B"}),
                ],
                dialect="mistral",
            ),
            Reply("ok", dialect="mistral"),
        ]
    )
    _, result = await collect(make_agent(model, get_weather), "go")
    assert [c[1][-1] for c in tool_messages(result.messages)] == ["A", "B"]


async def test_text_and_tool_calls_in_one_message() -> None:
    model = ScriptedModel(
        [
            Reply("Let me check.", tool_calls=[ToolCall("get_weather", {"city": "Lima"})]),
            Reply("Warm."),
        ]
    )
    events, result = await collect(make_agent(model, get_weather), "go")
    assert result.messages[1]["content"] == "Let me check."
    assert len(result.messages[1]["tool_calls"]) == 1
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    first_call = next(i for i, e in enumerate(events) if isinstance(e, ToolCallStarted))
    assert first_text < first_call


async def test_usage_is_summed_across_steps() -> None:
    model = ScriptedModel(
        [
            Reply(
                tool_calls=[ToolCall("get_weather", {"city": "A"})],
                usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            ),
            Reply("ok", usage={"prompt_tokens": 20, "completion_tokens": 7, "total_tokens": 27}),
        ]
    )
    events, result = await collect(make_agent(model, get_weather), "go")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (30, 12)
    assert result.usage.total_tokens == 42
    step_events = [e for e in events if isinstance(e, StepFinished)]
    assert [e.usage.total_tokens for e in step_events if e.usage] == [15, 27]
    assert all(e.time_to_first_token is not None for e in step_events)
    assert all(s.duration >= 0 for s in result.steps)


async def test_request_parameters_pass_through() -> None:
    model = ScriptedModel([Reply("ok")])
    agent = make_agent(
        model, get_weather, temperature=0.2, parallel_tool_calls=False,
        extra_body={"top_k": 5}, extra_headers={"X-Trace": "abc"},
    )  # fmt: skip
    await agent.run("hi", tool_choice="required", max_tokens=50)
    body = model.requests[0].body
    assert body["temperature"] == 0.2
    assert body["parallel_tool_calls"] is False
    assert body["top_k"] == 5
    assert body["tool_choice"] == "required"
    assert body["max_tokens"] == 50
    assert model.requests[0].headers["x-trace"] == "abc"


async def test_request_options_are_not_sent_as_fields() -> None:
    model = ScriptedModel([Reply("ok")])
    agent = make_agent(
        model, extra_query={"api-version": "2024-10-21"}, timeout=30, seed=openai.omit,
        user=openai.NOT_GIVEN, extra_headers=None,
    )  # fmt: skip
    await agent.run("hi")
    (request,) = model.requests
    assert request.query == "api-version=2024-10-21"
    assert request.path.endswith("/chat/completions")
    assert not {"extra_query", "timeout", "seed", "user", "extra_headers"} & set(request.body)


async def test_a_request_timeout_applies_to_the_request() -> None:
    # Over a real socket: the in-process transport has no network timeouts to apply.
    model = ScriptedModel([Reply("late", fault=Fault(stall_after=0, stall_seconds=5))])
    async with anyio.create_task_group() as tg:
        port = await tg.start(serve, model)
        client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k")
        agent = Agent(client=client, model="m", timeout=0.2, retries=NO_RETRIES)
        with anyio.fail_after(3), pytest.raises(StreamError, match="ReadTimeout"):
            await agent.run("hi")
        await client.close()
        tg.cancel_scope.cancel()


async def test_unknown_fields_for_one_run_are_refused_before_any_request() -> None:
    model = ScriptedModel([Reply("ok")])
    with pytest.raises(SetupError, match="top_p_typo"):
        make_agent(model).stream("hi", top_p_typo=1)
    assert model.requests == []


async def test_instructions_and_continuing_a_conversation() -> None:
    model = ScriptedModel([Reply("Hello!"), Reply("You said hi.")])
    agent = make_agent(model, instructions="Be brief.")
    first = await agent.run("hi")
    assert first.messages[0] == {"role": "system", "content": "Be brief."}
    saved = json.loads(json.dumps(first.to_messages()))
    second = await agent.run([*saved, {"role": "user", "content": "what did I say?"}])
    assert [m["role"] for m in model.requests[1].messages] == [
        "system", "user", "assistant", "user",
    ]  # fmt: skip
    assert second.output == "You said hi."


async def test_tool_context_is_injected() -> None:
    seen: list[ToolContext] = []

    @tool
    def whoami(ctx: ToolContext) -> str:
        """Say who is calling."""
        seen.append(ctx)
        return "ok"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("whoami", {}, id="c9")]), Reply("done")])
    agent = make_agent(model, whoami)
    async with agent.stream("go") as run:
        async for _ in run:
            pass
    (ctx,) = seen
    assert (ctx.run_id, ctx.tool_call_id, ctx.tool_name, ctx.step) == (
        run.run_id,
        "c9",
        "whoami",
        1,
    )
    assert ctx.messages[-1]["tool_calls"][0]["id"] == "c9"
    assert "ctx" not in json.dumps(model.requests[0].tools)


async def test_pydantic_model_tool_and_structured_result() -> None:
    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("place_order", {"item": "tea", "quantity": 2})]), Reply("ok")]
    )
    _, result = await collect(make_agent(model, place_order), "go")
    assert json.loads(tool_messages(result.messages)[0][1]) == {
        "ok": True, "item": "tea", "quantity": 2,
    }  # fmt: skip


async def test_sync_tools_run_in_worker_threads() -> None:
    threads: list[int] = []

    @tool
    def where() -> str:
        """Report the thread."""
        threads.append(threading.get_ident())
        return "ok"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("where")]), Reply("ok")])
    await make_agent(model, where).run("go")
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()


async def test_error_payload_mid_stream_fails_the_step_without_running_tools() -> None:
    recorder = Recorder()

    model = ScriptedModel([Reply(tool_calls=[ToolCall("act")], fault=Fault(error_after=2))])
    agent = make_agent(model, recorder.tool, retries=NO_RETRIES)
    events: list[Event] = []
    with pytest.raises(StreamError, match="error in the stream"):
        async with agent.stream("go") as run:
            async for event in run:
                events.append(event)
    assert not recorder.ran
    assert isinstance(events[-1], RunFailed)
    assert run.messages == [{"role": "user", "content": "go"}]


async def test_server_error_before_streaming_is_a_model_error() -> None:
    model = ScriptedModel([Reply("x", fault=Fault(status=500))])
    with pytest.raises(ModelError) as info:
        await make_agent(model, retries=NO_RETRIES).run("go")
    assert info.value.status_code == 500


async def test_malformed_chunk_is_a_stream_error() -> None:
    model = ScriptedModel([Reply("hello there", fault=Fault(malformed_after=1))])
    with pytest.raises(StreamError, match="malformed chunk"):
        await make_agent(model, retries=NO_RETRIES).run("go")


async def test_dropped_connection_is_a_stream_error() -> None:
    model = ScriptedModel([Reply("hello there friend", fault=Fault(drop_after=2))])
    with pytest.raises(StreamError, match="the stream broke"):
        await make_agent(model, retries=NO_RETRIES).run("go")


def assert_answered_as_cancelled(messages: list[dict[str, Any]]) -> None:
    """The call of a run left mid-tool is answered, so the conversation can go on."""
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    (call,) = messages[1]["tool_calls"]
    assert messages[2] == {
        "role": "tool",
        "tool_call_id": call["id"],
        "content": "cancelled: the run was stopped before this call finished",
    }


async def test_leaving_early_closes_the_stream_and_cancels_tools() -> None:
    cancelled = anyio.Event()

    @tool
    async def slow() -> str:
        """Take forever."""
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        return "never"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("slow")]), Reply("ok")])
    agent = make_agent(model, slow)
    with anyio.fail_after(5):
        async with agent.stream("go") as run:
            async for event in run:
                if isinstance(event, ToolStarted):
                    break
    assert cancelled.is_set()
    assert_answered_as_cancelled(run.messages)


async def test_client_factory_is_closed_after_each_run() -> None:
    model = ScriptedModel([Reply("a"), Reply("b")])
    clients: list[Any] = []

    def factory() -> Any:
        client = model.async_client()
        clients.append(client)
        return client

    agent = Agent(client=factory, model="m")
    assert (await agent.run("1")).output == "a"
    assert (await agent.run("2")).output == "b"
    assert len(clients) == 2
    assert all(c.is_closed() for c in clients)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"model": ""}, "model", id="empty-model"),
        pytest.param({"max_steps": 0}, "max_steps", id="max-steps"),
        pytest.param({"messages": []}, "messages", id="owned-field"),
        pytest.param({"tools": [get_weather, get_weather]}, "get_weather", id="duplicate-tool"),
        pytest.param({"top_k": 5}, r"unknown request field top_k: .*extra_body", id="unknown"),
        pytest.param({"temperatur": 1, "seeed": 2}, "fields seeed, temperatur", id="typos"),
        pytest.param({"response_format": Order}, "response_format", id="format-class"),
    ],
)
async def test_setup_mistakes(kwargs: dict[str, Any], message: str) -> None:
    options: dict[str, Any] = {"client": ScriptedModel([]).async_client(), "model": "m"}
    options.update(kwargs)
    with pytest.raises(SetupError, match=message):
        Agent(**options)


def test_run_sync() -> None:
    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("get_weather", {"city": "Rome"})]), Reply("Nice.")]
    )
    agent = Agent(client=model.async_client, model="m", tools=[get_weather])
    result = agent.run_sync("Weather in Rome?")
    assert result.output == "Nice."
    assert tool_messages(result.messages)[0][1].endswith("in Rome")


async def test_sync_tool_finishing_after_the_run_was_left_is_dropped_quietly() -> None:
    release = threading.Event()

    @tool
    def blocking() -> str:
        """Block in a worker thread."""
        release.wait(5)
        return "late"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("blocking")]), Reply("ok")])
    agent = make_agent(model, blocking)
    with anyio.fail_after(10):
        async with agent.stream("go") as run:
            async for event in run:
                if isinstance(event, ToolStarted):
                    # The thread cannot be cancelled: let it finish while the run unwinds.
                    release.set()
                    break
    assert_answered_as_cancelled(run.messages)


def raw_tool_chunks(finish: str | None) -> list[dict[str, Any]]:
    call = {
        "index": 0,
        "id": "c1",
        "type": "function",
        "function": {"name": "act", "arguments": "{}"},
    }
    return [
        {
            "id": "x",
            "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [call]}}],
        },
        {"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
    ]


@pytest.mark.parametrize(
    ("finish", "no_done", "runs"),
    [
        pytest.param(None, True, False, id="neither-finish-nor-done-is-cut"),
        pytest.param("tool_calls", True, True, id="finish-without-done"),
        pytest.param(None, False, True, id="done-without-finish"),
    ],
)
async def test_a_body_that_may_have_been_cut_never_runs_its_calls(
    finish: str | None, no_done: bool, runs: bool
) -> None:
    recorder = Recorder()

    first = Reply(chunks=raw_tool_chunks(finish), fault=Fault(no_done=True) if no_done else None)
    model = ScriptedModel([first, Reply("done")])
    agent = make_agent(model, recorder.tool, retries=NO_RETRIES)
    if runs:
        await agent.run("go")
    else:
        with pytest.raises(StreamError, match="ended early"):
            await agent.run("go")
    assert recorder.ran is runs


async def test_cancelling_the_consumer_task_keeps_the_conversation_consistent() -> None:
    started = anyio.Event()

    @tool
    async def quick() -> str:
        """Finish at once."""
        return "done quickly"

    @tool
    async def slow() -> str:
        """Take forever."""
        started.set()
        await anyio.sleep_forever()
        return "never"

    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("quick", id="q"), ToolCall("slow", id="s")]), Reply("ok")]
    )
    agent = make_agent(model, quick, slow)
    holder: list[Any] = []

    async def consume() -> None:
        async with agent.stream("go") as run:
            holder.append(run)
            async for _ in run:
                pass

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await started.wait()
            await anyio.sleep(0.05)  # let the quick tool report
            tg.cancel_scope.cancel()
    messages = holder[0].messages
    assert tool_messages(messages) == [
        ("q", "done quickly"),
        ("s", "cancelled: the run was stopped before this call finished"),
    ]
    # The conversation can be sent to the next run as it is.
    model2 = ScriptedModel([Reply("continued")])
    result = await make_agent(model2, quick, slow).run(
        [*messages, {"role": "user", "content": "and?"}]
    )
    assert result.output == "continued"


class _Shelf:
    """A toolset whose tools the test changes between steps."""

    def __init__(self, *tools: Any) -> None:
        self.tools: tuple[Any, ...] = tools


async def test_a_toolset_is_read_again_at_every_step() -> None:
    @tool
    def first() -> str:
        """The first tool."""
        return "one"

    @tool
    def second() -> str:
        """The second tool."""
        return "two"

    shelf = _Shelf(first)
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("first", {}, id="call_a")]),
            Reply(tool_calls=[ToolCall("second", {}, id="call_b")]),
            Reply("done"),
        ]
    )
    agent = make_agent(model, get_weather, shelf)
    assert list(agent.tools) == ["get_weather", "first"]
    events: list[Event] = []
    async with agent.stream("go") as run:
        async for event in run:
            events.append(event)
            if isinstance(event, ToolFinished) and event.name == "first":
                shelf.tools = (second,)  # the step after this one offers the new list
    assert [e.output for e in events if isinstance(e, ToolFinished)] == ["one", "two"]
    offered = [[t["function"]["name"] for t in r.tools or ()] for r in model.requests]
    assert offered == [
        ["get_weather", "first"],
        ["get_weather", "second"],
        ["get_weather", "second"],
    ]
    assert next(e for e in events if isinstance(e, RunStarted)).tools == ("get_weather", "first")


def test_a_toolset_name_clash_is_refused() -> None:
    model = ScriptedModel([])
    with pytest.raises(SetupError, match="two tools are named 'get_weather'"):
        make_agent(model, get_weather, _Shelf(get_weather))


# --- rough edges a new user meets ----------------------------------------------------------


def test_run_sync_again_and_again_with_a_client_instance() -> None:
    """Over real HTTP: every call runs on the agent's one loop, where the connections live."""
    with anyio.from_thread.start_blocking_portal() as portal:
        server, port = portal.start_task(functools.partial(serve, offline_model()))
        client = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0
        )
        agent = Agent(client=client, model="offline")
        assert agent.run_sync("hello").output
        assert agent.run_sync("hello again").output
        agent.close_sync()
        server.cancel()


def test_run_sync_with_a_client_factory_runs_again_and_again() -> None:
    with anyio.from_thread.start_blocking_portal() as portal:
        server, port = portal.start_task(functools.partial(serve, offline_model()))
        url = f"http://127.0.0.1:{port}/v1"
        agent = Agent(
            client=lambda: openai.AsyncOpenAI(base_url=url, api_key="k", max_retries=0),
            model="offline",
        )
        outputs = [agent.run_sync(f"hello {n}").output for n in range(3)]
        server.cancel()
    assert all(outputs)


async def test_run_sync_inside_an_event_loop_points_to_await() -> None:
    agent = Agent(client=ScriptedModel([]).async_client, model="m")
    with pytest.raises(SetupError, match=r"await agent\.run"):
        agent.run_sync("hi")


@pytest.mark.parametrize(
    ("name", "value", "hint"),
    [
        pytest.param("system_prompt", "Be brief.", "instructions=", id="system_prompt"),
        pytest.param("system", "Be brief.", "instructions=", id="system"),
        pytest.param("system_message", "Be brief.", "instructions=", id="system_message"),
        pytest.param("max_turns", 5, "max_steps=", id="max_turns"),
        pytest.param("max_iterations", 5, "max_steps=", id="max_iterations"),
        pytest.param("result_type", dict, "output_type=", id="result_type"),
        pytest.param("max_retries", 2, r"Retries\(max_retries", id="max_retries"),
        pytest.param("functions", [print], "tools=", id="functions"),
    ],
)
def test_names_from_other_libraries_point_to_ours(name: str, value: Any, hint: str) -> None:
    client = ScriptedModel([]).async_client()
    with pytest.raises(SetupError, match=hint):
        Agent(client=client, model="m", **{name: value})
    agent = Agent(client=client, model="m")
    with pytest.raises(SetupError, match=hint):
        agent.stream("hi", **{name: value})


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"retries": 3}, id="retries"),
        pytest.param({"timeouts": 5}, id="timeouts"),
        pytest.param({"tools": get_weather}, id="one-tool-not-a-list"),
        pytest.param({"tools": {"get_weather": get_weather}}, id="a-dict-of-tools"),
        pytest.param({"instructions": ["be brief"]}, id="instructions-not-text"),
    ],
)
def test_limits_must_be_their_own_types(options: dict[str, Any]) -> None:
    with pytest.raises(SetupError, match=r"takes|must be"):
        Agent(client=ScriptedModel([]).async_client(), model="m", **options)


def test_a_tool_definition_is_json_ready_data() -> None:
    text = json.dumps(get_weather.definition)
    assert json.loads(text)["function"]["name"] == "get_weather"
    get_weather.definition["function"]["name"] = "changed"  # a fresh copy each time
    assert get_weather.definition["function"]["name"] == "get_weather"


async def test_a_response_with_very_many_calls_runs_at_most_64_by_default() -> None:
    recorder = Recorder()
    calls = [ToolCall("act", {}) for _ in range(150)]
    model = ScriptedModel([Reply(tool_calls=calls), Reply("done")])
    events, _ = await collect(make_agent(model, recorder.tool), "go")
    assert recorder.calls == 64
    assert len([e for e in events if isinstance(e, ToolCallInvalid)]) == 86


async def test_a_slow_consumer_still_gets_every_tool_end() -> None:
    """Tools that end while the consumer holds an event are relayed, never dropped."""
    model = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("get_weather", {"city": "Paris"}, id="a"),
                    ToolCall("get_weather", {"city": "Rome"}, id="b"),
                ]
            ),
            Reply("Both sunny."),
        ]
    )
    agent = make_agent(model, get_weather)
    finished: list[str] = []
    async with agent.stream("go") as run:
        async for event in run:
            if isinstance(event, ToolFinished):
                finished.append(event.id)
            await anyio.sleep(0.02)  # a consumer slower than the tools
    assert sorted(finished) == ["a", "b"]
    assert run.result.output == "Both sunny."


async def test_a_run_with_tools_leaves_no_reference_cycle_of_its_own() -> None:
    # Cycles wait for the garbage collector, whose full passes stall a busy process:
    # a step's calls, their progress slots and contexts must be let go by refcount.
    @tool
    async def slow(n: int, ctx: ToolContext) -> str:
        """Report, wait, answer."""
        ctx.progress(0.5, "half")
        await anyio.sleep(0)
        return str(n)

    script = [Reply(tool_calls=[ToolCall("slow", {"n": 1}), ToolCall("slow", {"n": 2})])]
    for _ in range(2):  # the first run fills the caches that live as long as the process
        model = ScriptedModel([*script, Reply("done")])
        async with model.async_client() as client:
            agent = Agent(client=client, model="m", tools=[slow])
            gc.collect()
            gc.disable()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                result = await agent.run("go")
                del result
                gc.collect()
                left = [type(o).__qualname__ for o in gc.garbage]
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
                gc.enable()
    ours = {"ToolRun", "Progress", "ToolContext", "Inbox", "ToolRunner", "AgentRun"}
    assert not ours & set(left), left
