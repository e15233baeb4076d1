"""Usage limits stop a run at the right step; prices give each step and the run a cost.

Every case drives the real `openai` client over the scripted model's SSE, on both wires,
with the usage each response reports given in its `Reply`.
"""

from __future__ import annotations

from typing import Any, Literal

import anyio
import pytest

from agentstream import (
    Agent,
    Prices,
    RunState,
    SetupError,
    StepFinished,
    ToolCallInvalid,
    Usage,
    UsageLimitReached,
    UsageLimits,
    tool,
)
from agentstream.testing import Reply, ScriptedModel, ToolCall

from ._helpers import Recorder, of

pytestmark = pytest.mark.anyio

Wire = Literal["chat", "responses"]
WIRES = [pytest.param("chat", id="chat"), pytest.param("responses", id="responses")]


def usage(prompt: int, completion: int = 10, cached: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        data["prompt_tokens_details"] = {"cached_tokens": cached}
    return data


def acting(prompts: list[int], calls: int = 1) -> list[Reply]:
    """A step per prompt size, each asking for `calls` calls of `act`, then an answer."""
    steps = [Reply(tool_calls=[ToolCall("act")] * calls, usage=usage(p)) for p in prompts]
    return [*steps, Reply("the end", usage=usage(100))]


async def run_events(model: ScriptedModel, api: Wire, *tools: Any, **options: Any) -> Any:
    agent = Agent(client=model.async_client(), model="m", tools=tools, api=api, **options)
    events: list[Any] = []
    with anyio.fail_after(20):
        async with agent.stream("go") as run:
            async for event in run:
                events.append(event)
    return events, run.result


def assert_consistent(result: Any) -> None:
    """Every tool call of the conversation has its result (a state check refuses otherwise)."""
    assert result.state is not None
    RunState.from_json(result.state.to_json())
    asked = [c["id"] for m in result.messages if m["role"] == "assistant"
             for c in m.get("tool_calls") or []]  # fmt: skip
    answered = [m["tool_call_id"] for m in result.messages if m["role"] == "tool"]
    assert asked == answered


# (limits, replies' prompt sizes, calls per step) -> (requests sent, calls run, the
# UsageLimitReached's step and value). Estimates before a request: the last response's
# input and output tokens, plus 4 characters a token for the tool message added since.
LIMIT_CASES = [
    pytest.param(
        UsageLimits(requests=2), [1000] * 4, 1, 2, 2, (2, 3), id="requests-before-the-third"
    ),
    pytest.param(
        # 1000 + (1000 + 10 + ~14) fits 2500; 2000 + ~1024 does not: request 3 not sent
        UsageLimits(input_tokens=2500),
        [1000] * 4,
        1,
        2,
        2,
        (2, None),
        id="input-estimated",
    ),
    pytest.param(
        # the second response reports far more than estimated: its call does not run
        UsageLimits(input_tokens=2000),
        [100, 5000, 100],
        1,
        2,
        1,
        (2, 5100),
        id="input-after",
    ),
    pytest.param(UsageLimits(output_tokens=25), [100] * 4, 1, 3, 2, (3, 30), id="output"),
    pytest.param(
        UsageLimits(total_tokens=2000), [100, 3000, 100], 1, 2, 1, (2, 3120), id="total-after"
    ),
    pytest.param(UsageLimits(tool_calls=3), [100] * 4, 2, 2, 2, (2, 4), id="tool-calls"),
    pytest.param(
        # $1 per million tokens: 1010 a step; before request 3: 2020 + ~1024 > 2500
        UsageLimits(cost=0.0025),
        [1000] * 4,
        1,
        2,
        2,
        (2, None),
        id="cost-estimated",
    ),
    pytest.param(
        UsageLimits(cost=0.003), [1000, 5000, 1000], 1, 2, 1, (2, 0.00602), id="cost-after"
    ),
]


@pytest.mark.parametrize("api", WIRES)
@pytest.mark.parametrize(("limits", "prompts", "calls", "requests", "ran", "reached"), LIMIT_CASES)
async def test_each_limit_stops_the_run_at_the_right_step(
    api: Wire,
    limits: UsageLimits,
    prompts: list[int],
    calls: int,
    requests: int,
    ran: int,
    reached: tuple[int, float | None],
) -> None:
    recorder = Recorder()
    model = ScriptedModel(acting(prompts, calls))
    prices = Prices(input=1.0, output=1.0)
    events, result = await run_events(model, api, recorder.tool, limits=limits, prices=prices)

    assert len(model.requests) == requests
    assert recorder.calls == ran
    assert result.stop_reason == "usage_limit"
    [event] = of(events, UsageLimitReached)
    limit = next(name for name in LIMIT_NAMES if getattr(limits, name) is not None)
    assert (event.step, event.limit, event.maximum) == (reached[0], limit, getattr(limits, limit))
    assert event.value > event.maximum
    if reached[1] is not None:
        assert event.value == pytest.approx(reached[1])
    assert result.usage_limit == limit
    assert_consistent(result)
    refused = of(events, ToolCallInvalid)
    if ran < requests * calls:  # stopped after a response: its calls answered, not run
        assert [e.step for e in refused] == [requests] * calls
        assert all("usage limit" in e.error for e in refused)
    else:  # stopped before a request: the last step's calls ran
        assert refused == []
    assert events.index(event) < len(events) - 1  # before RunFinished


LIMIT_NAMES = ("requests", "input_tokens", "output_tokens", "total_tokens", "tool_calls", "cost")


@pytest.mark.parametrize("api", WIRES)
async def test_an_answer_past_a_limit_is_still_the_answer(api: Wire) -> None:
    model = ScriptedModel([Reply("all done", usage=usage(5000, 500))])
    events, result = await run_events(model, api, limits=UsageLimits(total_tokens=5000))

    assert (result.output, result.stop_reason, result.usage_limit) == ("all done", "answer", None)
    assert of(events, UsageLimitReached) == []


@pytest.mark.parametrize("api", WIRES)
async def test_the_first_request_is_not_sent_if_its_input_alone_passes_the_limit(api: Wire) -> None:
    model = ScriptedModel([Reply("never")])
    agent = Agent(client=model.async_client(), model="m", api=api)
    result = await agent.run("word " * 400, limits=UsageLimits(input_tokens=100))

    assert model.requests == []
    assert (result.stop_reason, result.usage_limit, result.output) == (
        "usage_limit",
        "input_tokens",
        "",
    )
    assert result.steps == ()


@pytest.mark.parametrize("api", WIRES)
async def test_a_runs_limits_replace_the_agents(api: Wire) -> None:
    recorder = Recorder()
    model = ScriptedModel(acting([100, 100]))
    agent = Agent(
        client=model.async_client(), model="m", api=api, tools=[recorder.tool],
        limits=UsageLimits(requests=1),
    )  # fmt: skip
    result = await agent.run("go", limits=UsageLimits(requests=5))

    assert (result.stop_reason, result.output, len(model.requests)) == ("answer", "the end", 3)


@pytest.mark.parametrize("api", WIRES)
async def test_cost_comes_from_the_given_prices_per_step(api: Wire) -> None:
    recorder = Recorder()
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("act")], usage=usage(1000, 200, cached=400)),
            Reply("done", usage=usage(3000, 100)),
        ]
    )
    prices = {"m": Prices(input=0.5, output=2.0, cached_input=0.25), "other": Prices(9, 9)}
    events, result = await run_events(model, api, recorder.tool, prices=prices)

    first = (600 * 0.5 + 400 * 0.25 + 200 * 2.0) / 1e6
    second = (3000 * 0.5 + 100 * 2.0) / 1e6
    assert [e.cost for e in of(events, StepFinished)] == pytest.approx([first, second])
    assert [info.cost for info in result.steps] == pytest.approx([first, second])
    assert result.cost == pytest.approx(first + second)
    assert result.stop_reason == "answer"


@pytest.mark.parametrize("api", WIRES)
async def test_no_cost_without_prices(api: Wire) -> None:
    recorder = Recorder()
    model = ScriptedModel(acting([1000]))
    events, result = await run_events(model, api, recorder.tool, limits=UsageLimits(requests=9))

    assert result.cost is None
    assert [e.cost for e in of(events, StepFinished)] == [None, None]
    assert all(info.cost is None and info.model is None for info in result.steps)
    saved = result.state.to_dict()
    assert all(set(step) == set(saved["steps"][0]) for step in saved["steps"])
    assert "cost" not in saved["steps"][0]
    assert "model" not in saved["steps"][0]


async def test_a_model_without_a_price_has_no_cost_and_fails_a_cost_limit() -> None:
    model = ScriptedModel([Reply("hi", usage=usage(100))] * 2)
    prices = {"another": Prices(input=1, output=1)}
    agent = Agent(client=model.async_client(), model="m", prices=prices)
    result = await agent.run("go")
    assert result.cost == 0
    assert result.steps[0].cost is None

    limited = agent.replace(limits=UsageLimits(cost=1.0))
    with pytest.raises(SetupError, match="no price for model 'm'"):
        await limited.run("go")


def test_a_cost_limit_needs_prices() -> None:
    model = ScriptedModel([])
    with pytest.raises(SetupError, match="cost limit needs prices"):
        Agent(client=model.async_client(), model="m", limits=UsageLimits(cost=1))
    agent = Agent(client=model.async_client(), model="m")
    with pytest.raises(SetupError, match="cost limit needs prices"):
        agent.stream("go", limits=UsageLimits(cost=1))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda: UsageLimits(requests=-1), "requests", id="negative"),
        pytest.param(lambda: UsageLimits(tool_calls=1.5), "tool_calls", id="not-int"),  # type: ignore[arg-type]
        pytest.param(lambda: UsageLimits(cost=float("nan")), "cost", id="nan-cost"),
        pytest.param(lambda: Prices(input=-1, output=0), "input", id="negative-price"),
    ],
)
def test_wrong_limits_and_prices_are_refused(make: Any, message: str) -> None:
    with pytest.raises(SetupError, match=message):
        make()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"limits": {"requests": 1}}, "UsageLimits", id="limits-dict"),
        pytest.param({"prices": {"m": 1.0}}, "Prices", id="price-not-prices"),
        pytest.param({"prices": 1.0}, "prices takes", id="prices-number"),
    ],
)
def test_an_agent_refuses_wrong_limits_and_prices(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SetupError, match=message):
        Agent(client=ScriptedModel([]).async_client(), model="m", **options)


async def test_a_price_table_prices_by_model_name() -> None:
    class Table:
        def __init__(self) -> None:
            self.asked: list[tuple[str, Usage]] = []

        def cost(self, model: str, usage: Usage) -> float | None:
            self.asked.append((model, usage))
            return usage.total_tokens / 1000

    table = Table()
    model = ScriptedModel([Reply("hi", usage=usage(900, 100))])
    agent = Agent(client=model.async_client(), model="m", prices=table)
    result = await agent.run("go")
    assert result.cost == pytest.approx(1.0)
    assert table.asked == [("m", Usage(900, 100, 1000))]


async def test_a_resumed_run_counts_the_cost_and_usage_before_its_pause() -> None:
    @tool(needs_approval=True)
    def pay(amount: int) -> str:
        """Pay."""
        return "paid"

    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("pay", {"amount": 5})], usage=usage(1000, 0)),
            Reply("paid it", usage=usage(1000, 0)),
        ]
    )
    agent = Agent(client=model.async_client(), model="m", tools=[pay], prices=Prices(1, 1))
    paused = await agent.run("go")
    assert paused.stop_reason == "approval_required"
    assert paused.state is not None
    saved = paused.state.to_json()

    [request] = paused.approvals
    result = await agent.resume(saved, approvals={request.id: True},
                                limits=UsageLimits(input_tokens=1010))  # fmt: skip
    # the resumed run's budget counts the paused part: 1000 + the conversation > 1010
    assert (result.stop_reason, result.usage_limit) == ("usage_limit", "input_tokens")
    assert len(model.requests) == 1
    assert result.cost == pytest.approx(0.001)


def test_genai_prices_prices_known_models() -> None:
    import genai_prices

    from agentstream.prices import GenaiPrices

    table = GenaiPrices(provider="openai")
    spent = Usage(prompt_tokens=10_000, completion_tokens=1_000, total_tokens=11_000)
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=10_000, output_tokens=1_000), "gpt-4o-mini",
        provider_id="openai",
    )  # fmt: skip
    cost = table.cost("gpt-4o-mini", spent)
    assert cost == pytest.approx(float(expected.total_price))
    assert cost is not None
    assert cost > 0
    assert table.cost("no-such-model-anywhere", spent) is None
