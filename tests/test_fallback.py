"""Fallback models answer a step the agent's model gave up on; a circuit breaker skips it.

Every case drives the real `openai` client over the scripted model's SSE, on both wires;
the scripted model answers by the model a request names, so one server plays both the
failing model and the fallback. A connection that cannot be made is a real refused
connection to a local port nobody listens on.
"""

from __future__ import annotations

import socket
from typing import Any, Literal

import anyio
import openai
import pytest

from agentstream import (
    Agent,
    CircuitBreaker,
    Fallback,
    FallbackUsed,
    ModelError,
    Prices,
    Retries,
    RetriesExhausted,
    SetupError,
    StepFinished,
    StepInterrupted,
    StepStarted,
    TextDelta,
    Timeouts,
    ToolFinished,
)
from agentstream.testing import Fault, ModelRequest, Reply, ScriptedModel, ToolCall

from ._helpers import Recorder, of

pytestmark = pytest.mark.anyio

Wire = Literal["chat", "responses"]
WIRES = [pytest.param("chat", id="chat"), pytest.param("responses", id="responses")]
FAST = Retries(backoff=0.001, max_backoff=0.002)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def by_model(replies: dict[str, Any]) -> ScriptedModel:
    """A model whose answer depends on the model a request names (a Reply, or a function
    of the request returning one)."""

    def answer(request: ModelRequest) -> Reply:
        reply = replies[request.model or ""]
        answer: Reply = reply(request) if callable(reply) else reply
        return answer

    return ScriptedModel(answer)


async def run_events(agent: Agent[Any], prompt: str = "go") -> tuple[list[Any], Any]:
    events: list[Any] = []
    with anyio.fail_after(20):
        async with agent.stream(prompt) as run:
            async for event in run:
                events.append(event)
    return events, run.result


def models_asked(model: ScriptedModel) -> list[str | None]:
    return [request.model for request in model.requests]


@pytest.mark.parametrize("api", WIRES)
async def test_a_503_storm_on_the_first_model_is_answered_by_the_second(api: Wire) -> None:
    recorder = Recorder()
    storm = Reply(fault=Fault(status=503))
    second = iter([Reply(tool_calls=[ToolCall("act")]), Reply("all well from b")])
    model = by_model({"a": storm, "b": lambda _: next(second)})
    agent = Agent(
        client=model.async_client(), model="a", fallback=["b"], api=api, retries=FAST,
        tools=[recorder.tool], breaker=CircuitBreaker(failures=5),
    )  # fmt: skip
    events, result = await run_events(agent)

    # Step 1: three attempts on a (its retries), then b; step 2 starts on a again.
    assert models_asked(model) == ["a", "a", "a", "b", "a", "a", "a", "b"]
    used = of(events, FallbackUsed)
    assert [(e.step, e.failed_model, e.model) for e in used] == [(1, "a", "b"), (2, "a", "b")]
    assert all(isinstance(e.error, ModelError) and e.error.status_code == 503 for e in used)
    # Nothing was shown twice: the failed attempts showed nothing, the text once.
    assert all(
        e.retracted_text == "" and e.retracted_calls == () for e in of(events, StepInterrupted)
    )
    assert "".join(e.text for e in of(events, TextDelta)) == "all well from b"
    assert result.output == "all well from b"
    assert recorder.calls == 1
    assert [e.model for e in of(events, StepFinished)] == ["b", "b"]
    assert [info.model for info in result.steps] == ["b", "b"]
    # b was asked the same conversation a was
    assert model.requests[3].messages == model.requests[0].messages
    # the event comes before b's attempt starts, numbered on from a's
    at = events.index(used[0])
    assert isinstance(events[at + 1], StepStarted)
    assert events[at + 1].attempt == 4


@pytest.mark.parametrize(("api", "drop_after"), [("chat", 3), ("responses", 7)])
async def test_a_step_that_showed_text_does_not_fall_back(api: Wire, drop_after: int) -> None:
    cut = Reply("partial answer that breaks", fault=Fault(drop_after=drop_after))
    model = by_model({"a": cut, "b": Reply("never")})
    agent = Agent(client=model.async_client(), model="a", fallback=["b"], api=api, retries=FAST)
    events: list[Any] = []
    with pytest.raises(RetriesExhausted), anyio.fail_after(20):
        async with agent.stream("go") as run:
            async for event in run:
                events.append(event)
    assert "b" not in models_asked(model)
    assert all(e.retracted_text for e in of(events, StepInterrupted))  # text was shown
    assert of(events, FallbackUsed) == []


@pytest.mark.parametrize("api", WIRES)
async def test_a_long_429_wait_falls_back_at_once(api: Wire) -> None:
    model = by_model({"a": Reply(fault=Fault(status=429, retry_after=600)), "b": Reply("b here")})
    agent = Agent(client=model.async_client(), model="a", fallback="b", api=api, retries=FAST)
    events, result = await run_events(agent)
    assert models_asked(model) == ["a", "b"]
    assert result.output == "b here"
    [used] = of(events, FallbackUsed)
    assert used.error.retry_after == 600


@pytest.mark.parametrize("api", WIRES)
@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_a_request_refused_as_wrong_does_not_fall_back(api: Wire, status: int) -> None:
    model = by_model({"a": Reply(fault=Fault(status=status)), "b": Reply("never")})
    agent = Agent(client=model.async_client(), model="a", fallback=["b"], api=api, retries=FAST)
    with pytest.raises(ModelError) as info:
        await run_events(agent)
    assert info.value.status_code == status
    assert models_asked(model) == ["a"]


def refused_port() -> int:
    """A local port nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("api", WIRES)
async def test_a_connection_that_cannot_be_made_falls_back_to_another_client(api: Wire) -> None:
    dead = openai.AsyncOpenAI(
        api_key="dead-key", base_url=f"http://127.0.0.1:{refused_port()}/v1", max_retries=0
    )
    model = ScriptedModel([Reply("from the other server")])
    agent = Agent(
        client=dead, model="a", fallback=[(model.async_client(), "b")], api=api,
        retries=Retries(max_retries=0),
    )  # fmt: skip
    try:
        events, result = await run_events(agent)
    finally:
        await dead.close()
    [used] = of(events, FallbackUsed)
    assert "could not connect" in str(used.error)
    assert models_asked(model) == ["b"]
    assert result.output == "from the other server"


@pytest.mark.parametrize("api", WIRES)
async def test_a_model_past_its_first_chunk_limit_falls_back(api: Wire) -> None:
    slow = Reply("late", fault=Fault(stall_after=0, stall_seconds=30))
    model = by_model({"a": slow, "b": Reply("on time")})
    agent = Agent(
        client=model.async_client(), model="a", fallback=[Fallback("b")], api=api,
        retries=Retries(max_retries=0), timeouts=Timeouts(first_chunk=0.2),
    )  # fmt: skip
    events, result = await run_events(agent)
    [used] = of(events, FallbackUsed)
    assert used.error.limit == "first_chunk"
    assert result.output == "on time"


@pytest.mark.parametrize("api", WIRES)
async def test_when_every_model_fails_the_run_fails(api: Wire) -> None:
    storm = Reply(fault=Fault(status=500))
    model = by_model({"a": storm, "b": storm, "c": storm})
    agent = Agent(
        client=model.async_client(), model="a", fallback=["b", "c"], api=api,
        retries=Retries(max_retries=1, backoff=0.001),
    )  # fmt: skip
    with pytest.raises(RetriesExhausted) as info:
        await run_events(agent)
    assert models_asked(model) == ["a", "a", "b", "b", "c", "c"]
    assert len(info.value.errors) == 6


@pytest.mark.parametrize("api", WIRES)
async def test_the_circuit_breaker_skips_the_dead_model_on_the_next_run(api: Wire) -> None:
    clock = Clock()
    healthy = {"a": False}

    def first(_: ModelRequest) -> Reply:
        return Reply("a is back") if healthy["a"] else Reply(fault=Fault(status=503))

    model = by_model({"a": first, "b": Reply("b answers")})
    breaker = CircuitBreaker(failures=1, cooldown=30, clock=clock)
    agent = Agent(
        client=model.async_client(), model="a", fallback=["b"], api=api,
        retries=Retries(max_retries=1, backoff=0.001), breaker=breaker,
    )  # fmt: skip

    _, result = await run_events(agent)
    assert models_asked(model) == ["a", "a", "b"]

    clock.now += 29  # still within the cooldown: a is skipped, with no event
    events, result = await run_events(agent)
    assert models_asked(model)[3:] == ["b"]
    assert of(events, FallbackUsed) == []
    assert result.steps[0].model == "b"

    clock.now += 2  # past it: a is tried again, and answers
    healthy["a"] = True
    _, result = await run_events(agent)
    assert models_asked(model)[4:] == ["a"]
    assert result.output == "a is back"

    healthy["a"] = False  # its circuit closed on the answer: one failure opens it again
    await run_events(agent)
    assert models_asked(model)[5:] == ["a", "a", "b"]
    await run_events(agent)
    assert models_asked(model)[8:] == ["b"]


async def test_when_every_circuit_is_open_each_model_is_tried_in_order() -> None:
    clock = Clock()
    storm = Reply(fault=Fault(status=503))
    replies = iter([storm, storm, Reply("b recovered")])
    model = by_model({"a": storm, "b": lambda _: next(replies)})
    agent = Agent(
        client=model.async_client(), model="a", fallback=["b"],
        retries=Retries(max_retries=0), breaker=CircuitBreaker(failures=1, clock=clock),
    )  # fmt: skip
    with pytest.raises(RetriesExhausted):
        await run_events(agent)  # a fails, b fails: both circuits open
    assert models_asked(model) == ["a", "b"]
    with pytest.raises(RetriesExhausted):
        await run_events(agent)  # both open: tried anyway, in order
    assert models_asked(model)[2:] == ["a", "b"]
    _, result = await run_events(agent)
    assert result.output == "b recovered"


async def test_a_fallbacks_steps_are_priced_at_its_own_price() -> None:
    model = by_model({"a": Reply(fault=Fault(status=503)), "b": Reply("b", usage={
        "prompt_tokens": 1000, "completion_tokens": 0, "total_tokens": 1000})})  # fmt: skip
    agent = Agent(
        client=model.async_client(), model="a", fallback=["b"], retries=Retries(max_retries=0),
        prices={"a": Prices(input=1, output=1), "b": Prices(input=3, output=3)},
    )  # fmt: skip
    events, result = await run_events(agent)
    assert [e.cost for e in of(events, StepFinished)] == [pytest.approx(0.003)]
    assert result.cost == pytest.approx(0.003)


async def test_no_fallback_no_model_field() -> None:
    model = ScriptedModel([Reply("hi")])
    events, result = await run_events(Agent(client=model.async_client(), model="a"))
    assert [e.model for e in of(events, StepFinished)] == [None]
    assert result.steps[0].model is None
    assert of(events, FallbackUsed) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"fallback": [3]}, "fallback holds", id="not-a-model"),
        pytest.param({"fallback": 3}, "list of models", id="not-a-list"),
        pytest.param({"fallback": [""]}, "needs a name", id="empty-name"),
        pytest.param({"fallback": [("x", "b")]}, "AsyncOpenAI instance", id="bad-pair"),
        pytest.param(
            {"fallback": ["b"], "api": "responses", "chain_responses": True},
            "cannot chain",
            id="chained",
        ),
        pytest.param({"breaker": object()}, "CircuitBreaker", id="bad-breaker"),
    ],
)
def test_wrong_fallback_settings_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SetupError, match=message):
        Agent(client=ScriptedModel([]).async_client(), model="a", **options)


def test_a_fallbacks_client_must_be_a_client() -> None:
    with pytest.raises(SetupError, match="AsyncOpenAI"):
        Fallback("b", client="x")  # type: ignore[arg-type]


def test_circuit_breaker_settings_are_checked() -> None:
    with pytest.raises(SetupError):
        CircuitBreaker(failures=0)
    with pytest.raises(SetupError):
        CircuitBreaker(cooldown=float("nan"))


async def test_replace_shares_the_agents_breaker() -> None:
    model = ScriptedModel([])
    agent = Agent(client=model.async_client(), model="a", fallback=["b"])
    assert agent.replace(max_steps=3).breaker is agent.breaker
    assert agent.replace(max_steps=3).fallback == (Fallback("b"),)


async def test_tool_results_are_not_lost_when_the_next_step_falls_back() -> None:
    recorder = Recorder()
    answers = iter([Reply(tool_calls=[ToolCall("act")]), Reply(fault=Fault(status=502))])
    model = by_model({"a": lambda _: next(answers), "b": Reply("b finished it")})
    agent = Agent(
        client=model.async_client(), model="a", fallback=["b"], tools=[recorder.tool],
        retries=Retries(max_retries=0),
    )  # fmt: skip
    events, result = await run_events(agent)
    assert models_asked(model) == ["a", "a", "b"]
    assert [m["role"] for m in model.requests[2].messages][-2:] == ["assistant", "tool"]
    assert len(of(events, ToolFinished)) == 1
    assert result.output == "b finished it"
