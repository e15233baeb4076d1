"""Context policies (`Agent(context=ContextPolicy(...))`): every request within the budget,
calls never parted from their results, the summary request counted, a refusal as too
long recovered once; over real SSE from the scripted model, on both wires, on asyncio
and trio."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import anyio
import pytest

from agentstream import (
    Agent,
    ContextCompacted,
    ContextPolicy,
    ModelError,
    Retries,
    RetriesExhausted,
    SetupError,
    StepInterrupted,
    tool,
)
from agentstream.context._policy import SUMMARY_PROMPT
from agentstream.testing import Fault, ModelRequest, Reply, ScriptedModel, ToolCall

from ._helpers import of

pytestmark = pytest.mark.anyio

Api: TypeAlias = Literal["chat", "responses"]

WIRES = [pytest.param("chat", id="chat"), pytest.param("responses", id="responses")]
BUDGET = 2_000
PAGE = 2_000  # characters of each tool result: 40 of them are 10x the budget


@tool
def read(page: int) -> str:
    """Read one page of the log."""
    return f"page {page}: " + "".join(f"line {page}.{n} all is well; " for n in range(200))[:PAGE]


def _tokens(request: ModelRequest) -> int:
    """The input tokens the scripted model reports for `request` (a token per 4 bytes)."""
    return (len(request.content) + 3) // 4


def _is_summary(request: ModelRequest) -> bool:
    messages = request.messages
    return bool(messages) and messages[0].get("content") == SUMMARY_PROMPT


class Pages:
    """A model that reads `steps` pages, one a step, then answers; it summarises when asked."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.asked = 0
        self.model = ScriptedModel(self.reply)

    def reply(self, request: ModelRequest) -> Reply:
        if _is_summary(request):
            return Reply("Pages were read; all is well so far.")
        self.asked += 1
        if self.asked > self.steps:
            return Reply("All pages read.")
        return Reply(tool_calls=[ToolCall("read", {"page": self.asked})])


def _paired(messages: list[dict[str, Any]]) -> bool:
    """Each tool call is followed by its result, and each result follows its call."""
    open_calls: set[str] = set()
    for message in messages:
        if message.get("role") == "tool":
            if message.get("tool_call_id") not in open_calls:
                return False
            open_calls.discard(message["tool_call_id"])
        else:
            if open_calls:
                return False  # a call whose result did not come right after it
            open_calls = {call["id"] for call in message.get("tool_calls") or ()}
    return not open_calls


async def _run(agent: Agent, prompt: str = "Read the log.") -> tuple[list[Any], Any]:
    events: list[Any] = []
    with anyio.fail_after(60):
        async with agent.stream(prompt) as run:
            async for event in run:
                events.append(event)
    return events, run.result


@pytest.mark.parametrize("api", WIRES)
async def test_a_long_run_stays_within_the_budget_at_every_request(api: Api) -> None:
    pages = Pages(40)
    agent = Agent(
        client=pages.model.async_client(), model="m", tools=[read], max_steps=50, api=api,
        instructions="You read logs.", context=ContextPolicy(max_tokens=BUDGET),
    )  # fmt: skip
    events, result = await _run(agent)

    assert result.output == "All pages read."
    requests = pages.model.requests
    assert sum(len(str(read.function(page=n))) for n in range(1, 41)) >= 10 * 4 * BUDGET
    assert max(_tokens(request) for request in requests) <= BUDGET
    for request in requests:
        assert _paired(request.messages)
    # The step just finished reaches the model whole: its result is never cut.
    steps = [request for request in requests if not _is_summary(request)]
    for number, request in enumerate(steps[1:], start=1):
        last = request.messages[-1]
        assert last["role"] == "tool"
        assert last["content"] == str(read.function(page=number))
        assert request.messages[1]["content"] == "Read the log."  # the task is kept
    # The run's own conversation keeps everything.
    outputs = [m["content"] for m in result.messages if m["role"] == "tool"]
    assert outputs == [str(read.function(page=n)) for n in range(1, 41)]
    compactions = of(events, ContextCompacted)
    assert compactions
    assert all(c.tokens_after < c.tokens_before for c in compactions)
    assert sum(c.shortened for c in compactions) > 0
    assert sum(c.summarised for c in compactions) > 0


@pytest.mark.parametrize("api", WIRES)
async def test_the_summary_request_and_its_usage_are_counted(api: Api) -> None:
    pages = Pages(40)
    agent = Agent(
        client=pages.model.async_client(), model="m", tools=[read], max_steps=50, api=api,
        context=ContextPolicy(max_tokens=BUDGET, keep_chars=100),
    )  # fmt: skip
    events, result = await _run(agent)

    requests = pages.model.requests
    summaries = [request for request in requests if _is_summary(request)]
    compactions = [c for c in of(events, ContextCompacted) if c.summarised]
    assert summaries
    assert len(summaries) == len(compactions)
    for request in summaries:
        assert not request.tools  # a summary offers no tools
    for compaction, request in zip(compactions, summaries, strict=True):
        assert compaction.usage is not None
        assert compaction.usage.prompt_tokens == _tokens(request)
    # Every request the model received is in the run's usage, the summaries too.
    assert result.usage.prompt_tokens == sum(_tokens(request) for request in requests)
    steps_usage = sum(info.usage.prompt_tokens for info in result.steps)
    assert result.usage.prompt_tokens - steps_usage == sum(_tokens(r) for r in summaries)
    # The request after a summary carries it in place of the turns it stands for.
    after = requests[requests.index(summaries[0]) + 1]
    assert any("Pages were read" in str(m.get("content")) for m in after.messages)
    # The task, then one assistant call and its result a step: what was summarised is gone.
    in_conversation = 1 + 2 * (compactions[0].step - 1)
    assert len(after.messages) == in_conversation - compactions[0].summarised + 1


@pytest.mark.parametrize("api", WIRES)
async def test_a_refusal_as_too_long_is_compacted_and_retried_once(api: Api) -> None:
    too_long = "This model's maximum context length is 3000 tokens; your messages are longer."
    asked: list[int] = []

    def reply(request: ModelRequest) -> Reply:
        asked.append(1)
        if len(asked) in (4, 5) and len(asked) <= refusals[0] + 3:
            return Reply(fault=Fault(status=400, message=too_long))
        if len(asked) > 6:
            return Reply("done")
        return Reply(tool_calls=[ToolCall("read", {"page": len(asked)})])

    refusals = [1]
    model = ScriptedModel(reply)
    agent = Agent(
        client=model.async_client(), model="m", tools=[read], max_steps=20, api=api,
        context=ContextPolicy(max_tokens=1_000_000, summarise=False),
        retries=Retries(backoff=0.001, max_backoff=0.002),
    )  # fmt: skip
    events, result = await _run(agent)

    assert result.output == "done"
    interrupted = of(events, StepInterrupted)
    assert [event.retry_in for event in interrupted] == [0.0]
    assert isinstance(interrupted[0].error, ModelError)
    refused, retried = model.requests[3], model.requests[4]
    assert _tokens(retried) < _tokens(refused)
    compacted = of(events, ContextCompacted)
    assert compacted
    assert compacted[0].step == interrupted[0].step
    assert events.index(compacted[0]) > events.index(interrupted[0])
    assert _paired(retried.messages)

    # Refused again after compacting: the step is not tried a third time.
    asked.clear()
    refusals[0] = 2
    model = ScriptedModel(reply)
    agent = agent.replace(client=model.async_client())
    with pytest.raises(RetriesExhausted, match="maximum context length") as failed:
        await _run(agent)
    assert [type(error) for error in failed.value.errors] == [ModelError, ModelError]
    assert len(model.requests) == 5


async def test_without_a_policy_a_refusal_ends_the_run() -> None:
    model = ScriptedModel([Reply(fault=Fault(status=400, message="context_length_exceeded"))])
    agent = Agent(client=model.async_client(), model="m", tools=[read])
    with pytest.raises(ModelError):
        await _run(agent)
    assert len(model.requests) == 1


@pytest.mark.parametrize("api", WIRES)
async def test_without_a_policy_every_request_carries_the_whole_conversation(
    api: Api,
) -> None:
    pages = Pages(5)
    agent = Agent(client=pages.model.async_client(), model="m", tools=[read], api=api)
    events, _ = await _run(agent)
    assert not of(events, ContextCompacted)
    last = pages.model.requests[-1].messages
    outputs = [m["content"] for m in last if m["role"] == "tool"]
    assert outputs == [str(read.function(page=n)) for n in range(1, 6)]


async def test_server_compaction_is_asked_for_on_the_responses_wire() -> None:
    pages = Pages(2)
    policy = ContextPolicy(max_tokens=50_000, server=True)
    agent = Agent(
        client=pages.model.async_client(), model="m", tools=[read], api="responses",
        chain_responses=True, context=policy,
    )  # fmt: skip
    await _run(agent)
    for request in pages.model.requests:
        assert request.body["context_management"] == [
            {"type": "compaction", "compact_threshold": 50_000}
        ]
    chat = Agent(client=pages.model.async_client(), model="m", context=policy)
    pages.asked = 99
    await _run(chat)
    assert "context_management" not in pages.model.requests[-1].body


@pytest.mark.parametrize("api", WIRES)
async def test_a_resumed_run_is_compacted_again_from_its_whole_conversation(api: Api) -> None:
    @tool(needs_approval=True)
    def publish(summary: str) -> str:
        """Publish a summary of the log."""
        return "published"

    pages = Pages(20)

    def reply(request: ModelRequest) -> Reply:
        if pages.asked == 20 and not _is_summary(request):
            pages.asked += 1
            return Reply(tool_calls=[ToolCall("publish", {"summary": "all is well"})])
        return pages.reply(request)

    model = ScriptedModel(reply)
    policy = ContextPolicy(max_tokens=BUDGET)
    agent = Agent(
        client=model.async_client(), model="m", tools=[read, publish], max_steps=50, api=api,
        context=policy,
    )  # fmt: skip
    _, paused = await _run(agent)
    assert paused.stop_reason == "approval_required"
    saved = paused.state.to_json()
    assert len([m for m in paused.messages if m["role"] == "tool"]) == 20  # all kept

    later = ScriptedModel(
        lambda request: Reply("Read 20 pages.") if _is_summary(request) else Reply("Published.")
    )
    resumed = agent.replace(client=later.async_client())
    approval = {paused.approvals[0].id: True}
    events: list[Any] = []
    with anyio.fail_after(60):
        async with resumed.resume_stream(saved, approvals=approval) as run:
            async for event in run:
                events.append(event)
    assert run.result.output == "Published."
    (request,) = [request for request in later.requests if not _is_summary(request)]
    assert max(_tokens(request) for request in later.requests) <= BUDGET
    assert _paired(request.messages)
    assert request.messages[-1]["content"] == "published"
    assert of(events, ContextCompacted)
    assert len(run.result.messages) == len(paused.messages) + 3  # the call, its result, the answer


@pytest.mark.parametrize("api", WIRES)
async def test_a_refusal_in_the_stream_is_recovered_too(api: Api) -> None:
    """A server that refuses in the stream (`response.failed`, or an `error` event)."""
    too_long = "Your input exceeds the context window of this model."
    asked: list[int] = []

    def reply(request: ModelRequest) -> Reply:
        asked.append(1)
        if len(asked) == 4:
            return Reply(fault=Fault(error_after=0, message=too_long))
        if len(asked) > 5:
            return Reply("done")
        return Reply(tool_calls=[ToolCall("read", {"page": len(asked)})])

    model = ScriptedModel(reply)
    agent = Agent(
        client=model.async_client(), model="m", tools=[read], max_steps=20, api=api,
        context=ContextPolicy(max_tokens=1_000_000, summarise=False),
    )  # fmt: skip
    events, result = await _run(agent)
    assert result.output == "done"
    (interrupted,) = of(events, StepInterrupted)
    assert interrupted.retry_in == 0.0
    assert _tokens(model.requests[4]) < _tokens(model.requests[3])
    assert of(events, ContextCompacted)[0].step == interrupted.step


def _compacting_turn() -> Reply:
    """A Responses turn whose output starts with the server's compaction item."""
    compaction = {"type": "compaction", "id": "cmp_1", "encrypted_content": "enc-summary"}
    call = {
        "type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "read",
        "arguments": '{"page": 1}', "status": "completed",
    }  # fmt: skip
    response = {"id": "resp_1", "object": "response", "model": "m", "output": []}
    usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    return Reply(
        chunks=[
            {"type": "response.created", "response": {**response, "status": "in_progress"}},
            {"type": "response.output_item.added", "output_index": 0, "item": compaction},
            {"type": "response.output_item.done", "output_index": 0, "item": compaction},
            {"type": "response.output_item.added", "output_index": 1, "item": call},
            {"type": "response.output_item.done", "output_index": 1, "item": call},
            {
                "type": "response.completed",
                "response": {
                    **response,
                    "status": "completed",
                    "output": [compaction, call],
                    "usage": usage,
                },
            },
        ]
    )


async def test_the_servers_compaction_item_goes_back_on_a_stateless_run() -> None:
    model = ScriptedModel([_compacting_turn(), Reply("done")])
    agent = Agent(
        client=model.async_client(), model="m", tools=[read], api="responses",
        context=ContextPolicy(max_tokens=50_000, server=True),
    )  # fmt: skip
    _, result = await _run(agent)
    assert result.output == "done"
    first, second = model.requests
    assert first.body["context_management"] == [{"type": "compaction", "compact_threshold": 50_000}]
    items = second.body["input"]
    assert [item["type"] for item in items] == [
        "message", "compaction", "function_call", "function_call_output",
    ]  # fmt: skip
    assert items[1] == {"type": "compaction", "id": "cmp_1", "encrypted_content": "enc-summary"}


class _Broken:
    def count(self, messages: Any) -> int:
        raise ValueError("no tokenizer here")


async def test_a_failing_counter_fails_the_run_with_our_error() -> None:
    model = ScriptedModel([Reply("hello")])
    agent = Agent(
        client=model.async_client(), model="m", context=ContextPolicy(100, counter=_Broken())
    )
    with pytest.raises(SetupError, match="counter failed: ValueError"):
        await _run(agent)
    assert not model.requests
