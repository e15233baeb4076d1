"""Traces of runs: the span tree and its attributes, read from the SDK's in-memory exporter.

Every case runs a real agent over the scripted model's SSE on asyncio and on trio,
whose tasks carry context variables differently: the tool spans and the spans a tool
opens itself must nest right on both.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from agentstream import (
    Agent,
    Image,
    Prices,
    Retries,
    StepFinished,
    Timeouts,
    ToolContext,
    ToolError,
    ToolStarted,
    UsageLimits,
    tool,
)
from agentstream.otel import Tracing
from agentstream.testing import Fault, ModelRequest, Reply, ScriptedModel, ToolCall

pytestmark = pytest.mark.anyio

FAST = Retries(backoff=0.001, max_backoff=0.002)
KEY = "sk-proj-Zq8w3ExampleKeyThatMustNeverShow0123"


class Traces:
    """A tracer provider whose finished spans are kept in memory."""

    def __init__(self, **options: Any) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(**options)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    @property
    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, prefix: str) -> list[ReadableSpan]:
        return sorted(
            (s for s in self.spans if s.name.startswith(prefix)),
            key=lambda s: s.start_time or 0,
        )

    def one(self, prefix: str) -> ReadableSpan:
        [span] = self.named(prefix)
        return span

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        assert parent.context is not None
        return sorted(
            (s for s in self.spans if s.parent and s.parent.span_id == parent.context.span_id),
            key=lambda s: (s.start_time or 0, s.name),
        )

    def tree(self) -> list[str]:
        """The span names, indented under their parents.

        Siblings are sorted by name, then by their children's names: tasks started
        together begin in no fixed order (trio shuffles them on purpose).
        """

        def walk(span: ReadableSpan) -> list[str]:
            below = sorted((walk(child) for child in self.children(span)), key=_order)
            return [span.name] + ["  " + line for lines in below for line in lines]

        ids = {s.context.span_id for s in self.spans if s.context is not None}
        roots = [s for s in self.spans if s.parent is None or s.parent.span_id not in ids]
        return [line for lines in sorted(map(walk, roots), key=_order) for line in lines]

    def tracing(self, **options: Any) -> Tracing:
        return Tracing(tracer_provider=self.provider, **options)


def _order(lines: list[str]) -> tuple[str, list[str]]:
    return lines[0], lines[1:]


@pytest.fixture
def traces() -> Iterator[Traces]:
    kept = Traces()
    yield kept
    kept.provider.shutdown()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def run_agent(agent: Agent, prompt: str = "go") -> list[Any]:
    events: list[Any] = []
    with anyio.fail_after(20):
        async with agent.stream(prompt) as run:
            async for event in run:
                events.append(event)
    return events


class Weather:
    """Two tools that run at the same time, each opening a span of its own inside."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.entered = 0
        self.both_in = anyio.Event()

        @tool
        async def weather(city: str) -> str:
            """The weather in a city."""
            with tracer.start_as_current_span(f"lookup {city}"):
                self.entered += 1
                if self.entered == 2:
                    self.both_in.set()
                with anyio.fail_after(10):
                    await self.both_in.wait()  # both spans are open at once
                return f"sunny in {city}"

        @tool
        def clock(city: str) -> str:
            """The local time in a city (a sync tool: it runs in a worker thread)."""
            with tracer.start_as_current_span(f"clock {city}"):
                return "noon"

        self.tools = [weather, clock]


def parallel_script() -> ScriptedModel:
    return ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("weather", {"city": "Paris"}),
                    ToolCall("weather", {"city": "Tokyo"}),
                    ToolCall("clock", {"city": "Lima"}),
                ]
            ),
            Reply("Sunny in Paris and Tokyo; noon in Lima."),
        ]
    )


async def test_a_run_with_parallel_tools_is_one_tree(traces: Traces) -> None:
    tools = Weather(traces.provider.get_tracer("tools"))
    model = parallel_script()
    agent = Agent(
        client=model.async_client(), model="m", tools=tools.tools, observers=[traces.tracing()]
    )
    events = await run_agent(agent)

    assert traces.tree() == [
        "invoke_agent",
        "  step 1",
        "    chat m",
        "    execute_tool clock",
        "      clock Lima",
        "    execute_tool weather",
        "      lookup Paris",
        "    execute_tool weather",
        "      lookup Tokyo",
        "  step 2",
        "    chat m",
    ]
    # Each lookup is under the span of its own call.
    started = {e.id: e for e in events if isinstance(e, ToolStarted)}
    for span in traces.named("execute_tool"):
        [inner] = traces.children(span)
        assert (
            inner.name.split()[1] == started[attrs(span)["gen_ai.tool.call.id"]].arguments["city"]
        )
    assert len({s.context.trace_id for s in traces.spans if s.context}) == 1


async def test_the_spans_carry_the_gen_ai_attributes(traces: Traces) -> None:
    tools = Weather(traces.provider.get_tracer("tools"))
    model = parallel_script()
    agent = Agent(
        client=model.async_client(), model="m", tools=tools.tools, observers=[traces.tracing()]
    )
    events = await run_agent(agent)
    finished = [e for e in events if isinstance(e, StepFinished)]
    usages = [e.usage for e in finished if e.usage is not None]
    assert len(usages) == 2

    run = traces.one("invoke_agent")
    assert run.kind == SpanKind.INTERNAL
    assert run.status.status_code == StatusCode.UNSET
    assert attrs(run) == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "m",
        "agentstream.run_id": events[0].run_id,
        "gen_ai.usage.input_tokens": sum(u.prompt_tokens for u in usages),
        "gen_ai.usage.output_tokens": sum(u.completion_tokens for u in usages),
        "agentstream.stop_reason": "answer",
        "agentstream.steps": 2,
    }

    chats = traces.named("chat")
    for number, (chat, step, usage) in enumerate(zip(chats, finished, usages, strict=True), 1):
        assert chat.kind == SpanKind.CLIENT
        got = attrs(chat)
        assert got["gen_ai.operation.name"] == "chat"
        assert got["gen_ai.provider.name"] == "openai"
        assert got["gen_ai.request.model"] == got["gen_ai.response.model"] == "m"
        assert got["gen_ai.response.id"] == step.response_id == f"chatcmpl-scripted{number}"
        assert got["gen_ai.response.finish_reasons"] == (step.finish_reason,)
        assert got["gen_ai.usage.input_tokens"] == usage.prompt_tokens > 0
        assert got["gen_ai.usage.output_tokens"] == usage.completion_tokens > 0
        assert got["gen_ai.response.time_to_first_chunk"] == step.time_to_first_token
        assert got["agentstream.tokens_per_second"] == step.tokens_per_second
        assert (got["agentstream.step"], got["agentstream.attempt"]) == (number, 1)
        assert "gen_ai.input.messages" not in got
        assert "gen_ai.output.messages" not in got
    assert [attrs(c)["gen_ai.response.finish_reasons"] for c in chats] == [
        ("tool_calls",),
        ("stop",),
    ]
    # The request span ends when its response is complete, before the tools start.
    first_chat, *_ = chats
    for span in traces.named("execute_tool"):
        assert (first_chat.end_time or 0) <= (span.start_time or 0)

    ids = [e.id for e in events if isinstance(e, ToolStarted)]
    tool_spans = traces.named("execute_tool")
    assert sorted(attrs(s)["gen_ai.tool.call.id"] for s in tool_spans) == sorted(ids)
    for span in tool_spans:
        got = attrs(span)
        assert got["gen_ai.operation.name"] == "execute_tool"
        assert got["gen_ai.tool.name"] == span.name.removeprefix("execute_tool ")
        assert got["gen_ai.tool.type"] == "function"
        assert got["agentstream.step"] == 1
        assert "gen_ai.tool.call.arguments" not in got
        assert "gen_ai.tool.call.result" not in got
        assert span.status.status_code == StatusCode.UNSET


async def test_contents_are_recorded_only_when_asked(traces: Traces) -> None:
    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("clock", {"city": "Lima"})]), Reply("noon in Lima")]
    )

    @tool
    def clock(city: str) -> str:
        """The local time."""
        return f"noon in {city}"

    tracing = traces.tracing(include_content=True)
    agent = Agent(
        client=model.async_client(), model="m", tools=[clock], instructions="Be brief.",
        observers=[tracing],
    )  # fmt: skip
    events = await run_agent(agent, "time in Lima?")
    call_id = next(e.id for e in events if isinstance(e, ToolStarted))

    first, second = traces.named("chat")
    assert json.loads(attrs(first)["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "time in Lima?"}]},
    ]
    assert json.loads(attrs(first)["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": call_id, "name": "clock", "arguments": {"city": "Lima"}}
            ],
            "finish_reason": "tool_calls",
        }
    ]
    sent = json.loads(attrs(second)["gen_ai.input.messages"])
    assert sent[-1] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": call_id, "response": "noon in Lima"}],
    }
    assert json.loads(attrs(second)["gen_ai.output.messages"])[0]["parts"] == [
        {"type": "text", "content": "noon in Lima"}
    ]
    span = traces.one("execute_tool")
    assert json.loads(attrs(span)["gen_ai.tool.call.arguments"]) == {"city": "Lima"}
    assert attrs(span)["gen_ai.tool.call.result"] == "noon in Lima"


async def test_a_retried_step_shows_each_attempt(traces: Traces) -> None:
    model = ScriptedModel(
        [
            Reply(fault=Fault(status=503)),
            Reply("half an ans", fault=Fault(drop_after=2)),
            Reply("fine now"),
        ]
    )
    agent = Agent(
        client=model.async_client(), model="m", retries=FAST, observers=[traces.tracing()]
    )
    await run_agent(agent)

    assert traces.tree() == ["invoke_agent", "  step 1", "    chat m", "    chat m", "    chat m"]
    refused, dropped, answered = traces.named("chat")
    assert [attrs(s)["agentstream.attempt"] for s in (refused, dropped, answered)] == [1, 2, 3]
    assert refused.status.status_code == StatusCode.ERROR
    assert attrs(refused)["error.type"] == "503"
    assert dropped.status.status_code == StatusCode.ERROR
    assert attrs(dropped)["error.type"] == "StreamError"
    assert dropped.status.description
    assert "gen_ai.response.id" not in attrs(dropped)
    assert answered.status.status_code == StatusCode.UNSET
    assert "error.type" not in attrs(answered)
    step = traces.one("step")
    assert attrs(step)["agentstream.attempts"] == 3
    assert step.status.status_code == StatusCode.UNSET
    assert traces.one("invoke_agent").status.status_code == StatusCode.UNSET


async def test_a_failed_run_ends_every_span_with_its_error(traces: Traces) -> None:
    model = ScriptedModel([Reply(fault=Fault(status=404, message="no such model"))])
    agent = Agent(client=model.async_client(), model="m", observers=[traces.tracing()])
    with pytest.raises(Exception, match="no such model"):
        await run_agent(agent)

    assert traces.tree() == ["invoke_agent", "  step 1", "    chat m"]
    for span in traces.spans:
        assert span.status.status_code == StatusCode.ERROR, span.name
        assert attrs(span)["error.type"] == "404"
        assert "no such model" in (span.status.description or "")


@pytest.mark.parametrize("how", ["left", "cancelled"])
async def test_a_stopped_run_ends_its_spans_with_an_error(traces: Traces, how: str) -> None:
    @tool
    async def wait() -> str:
        """Wait for ever."""
        await anyio.sleep_forever()
        return "never"

    model = ScriptedModel([Reply(tool_calls=[ToolCall("wait"), ToolCall("wait")])])
    agent = Agent(
        client=model.async_client(), model="m", tools=[wait], observers=[traces.tracing()]
    )
    running = 0
    with anyio.fail_after(20), anyio.CancelScope() as scope:
        async with agent.stream("go") as run:
            async for event in run:
                if isinstance(event, ToolStarted):
                    running += 1
                    if running == 2 and how == "left":
                        break
                    if running == 2:
                        scope.cancel()

    assert traces.tree() == [
        "invoke_agent",
        "  step 1",
        "    chat m",
        "    execute_tool wait",
        "    execute_tool wait",
    ]
    for span in (traces.one("invoke_agent"), traces.one("step"), *traces.named("execute_tool")):
        assert span.status.status_code == StatusCode.ERROR, span.name
        assert attrs(span)["error.type"] == "cancelled"
    # The response had come whole before the run was stopped.
    assert traces.one("chat").status.status_code == StatusCode.UNSET
    tools_ended = max(s.end_time or 0 for s in traces.named("execute_tool"))
    assert tools_ended <= (traces.one("invoke_agent").end_time or 0)


async def test_a_stream_cut_by_cancellation_fails_its_request(traces: Traces) -> None:
    model = ScriptedModel(
        [Reply("one two three four", fault=Fault(stall_after=3, stall_seconds=30))]
    )
    agent = Agent(client=model.async_client(), model="m", observers=[traces.tracing()])
    with anyio.fail_after(20):
        async with agent.stream("go") as run:
            async for event in run:
                if type(event).__name__ == "TextDelta":
                    break

    chat = traces.one("chat")
    assert chat.status.status_code == StatusCode.ERROR
    assert attrs(chat)["error.type"] == "cancelled"


async def test_a_tool_error_marks_its_span(traces: Traces) -> None:
    @tool
    def lookup(name: str) -> str:
        """Look someone up."""
        raise ToolError(f"no record of {name}")

    @tool
    async def slow() -> str:
        """Too slow."""
        await anyio.sleep(30)
        return "late"

    for content in (False, True):
        traces.exporter.clear()
        model = ScriptedModel(
            [Reply(tool_calls=[ToolCall("lookup", {"name": "Ada"}), ToolCall("slow")]), Reply("ok")]
        )
        agent = Agent(
            client=model.async_client(), model="m", tools=[lookup, slow],
            timeouts=Timeouts(tool=0.05), observers=[traces.tracing(include_content=content)],
        )  # fmt: skip
        await run_agent(agent)
        failed, timed_out = (traces.one(f"execute_tool {n}") for n in ("lookup", "slow"))
        assert attrs(failed)["error.type"] == "ToolError"
        assert attrs(timed_out)["error.type"] == "TimeoutError"
        assert failed.status.status_code == timed_out.status.status_code == StatusCode.ERROR
        # The exception's text may quote personal data: only with contents.
        assert ("Ada" in (failed.status.description or "")) is content
        assert "gen_ai.tool.call.result" not in attrs(failed)


async def test_the_api_key_is_never_recorded(traces: Traces) -> None:
    echo = f"Incorrect API key provided: {KEY}."
    model = ScriptedModel(
        [
            Reply("a", fault=Fault(error_after=1, message=echo)),
            Reply(fault=Fault(status=401, message=echo)),
        ]
    )
    agent = Agent(
        client=model.async_client(api_key=KEY), model="m", retries=FAST,
        observers=[traces.tracing(include_content=True)],
    )  # fmt: skip
    with pytest.raises(Exception, match=r"\*\*\*"):
        await run_agent(agent, f"my key is not {KEY[:6]}")

    assert len(traces.named("chat")) == 2
    dump = "\n".join(span.to_json() for span in traces.spans)
    assert "Incorrect API key provided: ***" in dump
    assert KEY not in dump
    assert KEY[10:] not in dump


async def test_the_run_span_joins_the_callers_trace(traces: Traces) -> None:
    model = ScriptedModel([Reply("hi")])
    agent = Agent(client=model.async_client(), model="m", observers=[traces.tracing()])
    with traces.provider.get_tracer("app").start_as_current_span("request"):
        await run_agent(agent)
    assert traces.tree() == ["request", "  invoke_agent", "    step 1", "      chat m"]


async def test_an_agent_name_names_the_run(traces: Traces) -> None:
    model = ScriptedModel([Reply("hi")])
    tracing = traces.tracing(agent_name="support", provider="ollama")
    agent = Agent(client=model.async_client(), model="m", observers=[tracing])
    await run_agent(agent)
    run = traces.one("invoke_agent")
    assert run.name == "invoke_agent support"
    assert attrs(run)["gen_ai.agent.name"] == "support"
    assert attrs(traces.one("chat"))["gen_ai.provider.name"] == "ollama"


@pytest.mark.parametrize(
    "provider",
    [
        pytest.param(lambda: trace.NoOpTracerProvider(), id="no-op"),
        pytest.param(lambda: TracerProvider(sampler=ALWAYS_OFF), id="sampled-out"),
    ],
)
async def test_an_unrecorded_run_is_not_watched(provider: Any) -> None:
    model = ScriptedModel([Reply(tool_calls=[ToolCall("clock", {"city": "Lima"})]), Reply("ok")])

    @tool
    def clock(city: str, context: ToolContext) -> str:
        """The local time."""
        assert not trace.get_current_span().is_recording()
        return "noon"

    tracing = Tracing(tracer_provider=provider())
    agent = Agent(client=model.async_client(), model="m", tools=[clock], observers=[tracing])
    async with agent.stream("go") as run:
        assert tracing.observe(run) is None
        async for _ in run:
            pass
    assert run.result.output == "ok"


def test_an_observer_must_have_observe() -> None:
    from agentstream import SetupError

    model = ScriptedModel([Reply("hi")])
    with pytest.raises(SetupError, match="observe"):
        Agent(client=model.async_client(), model="m", observers=[object()])  # type: ignore[list-item]


async def test_a_paused_run_and_its_resumption_are_two_whole_traces(traces: Traces) -> None:
    @tool(needs_approval=True)
    def transfer(to: str) -> str:
        """Send money."""
        return f"sent to {to}"

    @tool
    def balance() -> str:
        """Read the balance."""
        return "100"

    model = ScriptedModel(
        [
            Reply(
                tool_calls=[
                    ToolCall("balance", id="c1"),
                    ToolCall("transfer", {"to": "Bo"}, id="c2"),
                ]
            )
        ]
    )
    agent = Agent(
        client=model.async_client(), model="m", tools=[transfer, balance],
        observers=[traces.tracing()],
    )  # fmt: skip
    paused = await agent.run("pay Bo")
    assert paused.stop_reason == "approval_required"
    assert traces.tree() == ["invoke_agent", "  step 1", "    chat m", "    execute_tool balance"]
    assert all(span.status.status_code == StatusCode.UNSET for span in traces.spans)
    assert attrs(traces.one("invoke_agent"))["agentstream.stop_reason"] == "approval_required"
    [asked] = traces.one("step").events
    assert asked.name == "approval_requested"
    assert dict(asked.attributes or {}) == {
        "gen_ai.tool.name": "transfer",
        "gen_ai.tool.call.id": "c2",
    }

    traces.exporter.clear()
    later = Agent(
        client=ScriptedModel([Reply("Done.")]).async_client(), model="m",
        tools=[transfer, balance], observers=[traces.tracing()],
    )  # fmt: skip
    assert paused.state is not None
    async with later.resume_stream(paused.state.to_json(), approvals={"c2": True}) as resumed:
        async for _ in resumed:
            pass
    assert resumed.result.output == "Done."
    assert traces.tree() == [
        "invoke_agent",
        "  step 1",
        "    execute_tool transfer",
        "  step 2",
        "    chat m",
    ]
    assert [e.name for e in traces.named("step 1")[0].events] == ["tool_call_approved"]
    assert all(span.status.status_code == StatusCode.UNSET for span in traces.spans)


async def test_images_in_results_are_named_not_copied(traces: Traces) -> None:
    model = ScriptedModel([Reply(tool_calls=[ToolCall("snap", {})]), Reply("a cat")])
    data = b"\x89PNG\r\n\x1a\n" + b"cat" * 100

    @tool
    def snap() -> list[object]:
        """Take a photo."""
        return ["a photo", Image(data)]

    tracing = traces.tracing(include_content=True)
    agent = Agent(client=model.async_client(), model="m", tools=[snap], observers=[tracing])
    events = await run_agent(agent, "look")
    call_id = next(e.id for e in events if isinstance(e, ToolStarted))
    _, second = traces.named("chat")
    sent = json.loads(attrs(second)["gen_ai.input.messages"])
    note = f"a photo\n[image: image/png, {len(data)} bytes]"
    assert sent[-1] == {
        "role": "tool",
        "parts": [
            {
                "type": "tool_call_response",
                "id": call_id,
                "response": [{"type": "text", "content": note}, {"type": "image_url"}],
            }
        ],
    }
    recorded = json.dumps([dict(span.attributes or {}) for span in traces.spans])
    assert base64.b64encode(data).decode()[:40] not in recorded


async def test_a_fallback_its_cost_and_a_usage_limit_are_in_the_traces(traces: Traces) -> None:
    def answer(request: ModelRequest) -> Reply:
        if request.model == "a":
            return Reply(fault=Fault(status=503))
        spent = {"prompt_tokens": 1000, "completion_tokens": 0, "total_tokens": 1000}
        return Reply(tool_calls=[ToolCall("ping")], usage=spent)

    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    model = ScriptedModel(answer)
    agent = Agent(
        client=model.async_client(), model="a", tools=[ping], fallback=["b"],
        retries=Retries(max_retries=0), observers=[traces.tracing()],
        prices={"a": Prices(input=1, output=1), "b": Prices(input=2, output=2)},
        limits=UsageLimits(requests=1),
    )  # fmt: skip
    await run_agent(agent)

    failed, answered = traces.named("chat")
    assert failed.name == "chat a"
    assert failed.status.status_code == StatusCode.ERROR
    assert answered.name == "chat b"
    assert attrs(answered)["gen_ai.request.model"] == "b"
    assert attrs(answered)["agentstream.fallback"] is True
    assert attrs(answered)["agentstream.cost_usd"] == pytest.approx(0.002)
    assert "agentstream.fallback" not in attrs(failed)
    run = attrs(traces.one("invoke_agent"))
    assert run["agentstream.cost_usd"] == pytest.approx(0.002)
    assert (run["agentstream.stop_reason"], run["agentstream.usage_limit"]) == (
        "usage_limit",
        "requests",
    )


async def test_a_run_without_prices_or_fallbacks_has_none_of_their_attributes(
    traces: Traces,
) -> None:
    model = ScriptedModel([Reply("hi")])
    await run_agent(Agent(client=model.async_client(), model="m", observers=[traces.tracing()]))
    for span in traces.spans:
        assert not {
            "agentstream.cost_usd",
            "agentstream.fallback",
            "agentstream.usage_limit",
        } & set(attrs(span))
