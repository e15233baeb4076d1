"""The agent loop on the Responses API: the real `openai` client over the scripted
model's real SSE (with `event:` lines), on asyncio and trio."""

from __future__ import annotations

import json
from typing import Any

import anyio
import openai
import pytest

from agentstream import (
    Agent,
    Retries,
    RunState,
    StepInterrupted,
    ToolCallInvalid,
    ToolFinished,
    tool,
)
from agentstream.testing import Fault, Reply, ScriptedModel, ToolCall, offline_model, serve

from ._helpers import of

pytestmark = pytest.mark.anyio

FAST = Retries(backoff=0.001, max_backoff=0.002)


class Tools:
    """`add` records its calls; `send` needs approval."""

    def __init__(self) -> None:
        self.ran: list[str] = []

        @tool
        def add(a: int, b: int) -> int:
            """Add two numbers."""
            self.ran.append(f"add {a} {b}")
            return a + b

        @tool(needs_approval=True)
        def send(to: str) -> str:
            """Send the sum to someone."""
            self.ran.append(f"send {to}")
            return f"sent to {to}"

        self.tools = [add, send]


async def _run(agent: Agent, prompt: str = "add", **options: Any) -> tuple[list[Any], Any]:
    events: list[Any] = []
    with anyio.fail_after(20):
        async with agent.stream(prompt, **options) as run:
            async for event in run:
                events.append(event)
    return events, run.result


def _agent(model: ScriptedModel, tools: Tools, **options: Any) -> Agent:
    options.setdefault("retries", FAST)
    return Agent(
        client=model.async_client(), model="m", tools=tools.tools, api="responses", **options
    )


async def test_tools_end_to_end() -> None:
    tools = Tools()
    model = ScriptedModel(
        [
            Reply(
                "Adding.",
                reasoning="Two sums.",
                tool_calls=[ToolCall("add", {"a": 1, "b": 2}), ToolCall("add", {"a": 3, "b": 4})],
            ),
            Reply("3 and 7."),
        ]
    )
    agent = _agent(model, tools, instructions="Be brief.")
    events, result = await _run(agent)
    assert result.stop_reason == "answer"
    assert result.output == "3 and 7."
    assert sorted(tools.ran) == ["add 1 2", "add 3 4"]
    assert sorted(e.output for e in of(events, ToolFinished)) == ["3", "7"]
    assert all(request.path.endswith("/responses") for request in model.requests)
    body = model.requests[1].body
    assert body["instructions"] == "Be brief."
    assert body["store"] is False
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["tools"][0] == {
        "type": "function",
        "name": "add",
        "description": "Add two numbers.",
        "parameters": tools.tools[0].parameters,
        "strict": False,
    }
    kinds = [item.get("type") for item in body["input"]]
    assert kinds == [
        "message",
        "reasoning",
        "message",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
    ]
    reasoning = body["input"][1]
    assert reasoning["encrypted_content"] == "scripted-encrypted:resp_scripted1"
    calls = [item["call_id"] for item in body["input"][3:5]]
    outputs = [(item["call_id"], item["output"]) for item in body["input"][5:]]
    assert outputs == [(calls[0], "3"), (calls[1], "7")]
    # The conversation stays chat messages: readable, and plain JSON.
    assert [m["role"] for m in result.messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
    ]
    json.dumps(list(result.messages))


async def test_a_paused_run_resumes_from_its_json() -> None:
    tools = Tools()
    first = ScriptedModel(
        [
            Reply(
                reasoning="Add, then send.",
                tool_calls=[
                    ToolCall("add", {"a": 2, "b": 2}, id="call_0"),
                    ToolCall("send", {"to": "Bob"}, id="call_1"),
                ],
            )
        ]
    )
    _, paused = await _run(_agent(first, tools))
    assert paused.stop_reason == "approval_required"
    assert tools.ran == ["add 2 2"]
    saved = paused.state.to_json()
    assert RunState.from_json(saved).to_json() == saved

    later_tools = Tools()
    later = ScriptedModel([Reply("Sent.")])
    result = await _agent(later, later_tools).resume(saved, approvals={"call_1": True})
    assert result.stop_reason == "answer"
    assert result.output == "Sent."
    assert later_tools.ran == ["send Bob"]
    items = later.requests[0].body["input"]
    assert [item.get("type") for item in items] == [
        "message",
        "reasoning",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
    ]
    assert items[1]["encrypted_content"] == "scripted-encrypted:resp_scripted1"
    assert [(i["call_id"], i["output"]) for i in items[4:]] == [
        ("call_0", "4"),
        ("call_1", "sent to Bob"),
    ]


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(error_after=4), id="error-event"),
        pytest.param(Fault(drop_after=6), id="dropped"),
        pytest.param(Fault(malformed_after=5), id="malformed"),
        pytest.param(Fault(status=503), id="503"),
    ],
)
async def test_a_failed_stream_is_retried(fault: Fault) -> None:
    tools = Tools()
    call = ToolCall("add", {"a": 5, "b": 5})
    model = ScriptedModel(
        [Reply("Working", tool_calls=[call], fault=fault), Reply(tool_calls=[call]), Reply("10")]
    )
    events, result = await _run(_agent(model, tools))
    assert result.output == "10"
    assert tools.ran == ["add 5 5"]  # the broken attempt's call never ran
    interrupted = of(events, StepInterrupted)
    assert [e.step for e in interrupted] == [1]
    assert len(model.requests) == 3


async def test_a_secret_in_an_error_event_is_masked() -> None:
    key = "sk-test-secret-key-0123456789"
    model = ScriptedModel(
        [Reply("x", fault=Fault(error_after=2, message=f"bad key {key}")), Reply("ok")]
    )
    agent = Agent(
        client=model.async_client(api_key=key),
        model="m",
        api="responses",
        retries=FAST,
    )
    events, result = await _run(agent)
    assert result.output == "ok"
    (interrupted,) = of(events, StepInterrupted)
    assert key not in str(interrupted.error)
    assert key not in repr(interrupted.error.body)
    assert "bad key" in str(interrupted.error)


async def test_an_incomplete_response_runs_no_cut_call() -> None:
    tools = Tools()
    calls = [ToolCall("add", {"a": 1, "b": 1}), ToolCall("add", {"a": 100000, "b": 200000})]
    model = ScriptedModel([Reply(tool_calls=calls, finish_reason="length")])
    events, result = await _run(_agent(model, tools))
    assert result.stop_reason == "length"
    assert tools.ran == []
    invalid = of(events, ToolCallInvalid)
    assert len(invalid) == 2
    assert all("token limit" in e.error for e in invalid)
    assert [m["role"] for m in result.messages][-3:] == ["assistant", "tool", "tool"]


def _reused() -> list[Reply]:
    """A server that numbers calls per reply: `call_0` every time."""
    return [
        Reply(tool_calls=[ToolCall("add", {"a": 1, "b": 1}, id="call_0")]),
        Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 2}, id="call_0")]),
        Reply("2 and 4."),
    ]


async def test_reused_call_ids_stay_apart_in_a_stateless_run() -> None:
    tools = Tools()
    model = ScriptedModel(_reused())
    _, result = await _run(_agent(model, tools))
    assert result.output == "2 and 4."
    assert tools.ran == ["add 1 1", "add 2 2"]
    items = model.requests[2].body["input"]
    pairs = [(i["type"], i["call_id"]) for i in items if "call_id" in i]
    first, second = pairs[0][1], pairs[2][1]
    assert first == "call_0"
    assert second != "call_0"  # fresh and unique: each output matches its own call
    assert pairs == [
        ("function_call", first),
        ("function_call_output", first),
        ("function_call", second),
        ("function_call_output", second),
    ]
    outputs = [i["output"] for i in items if i["type"] == "function_call_output"]
    assert outputs == ["2", "4"]


async def test_reused_call_ids_go_back_as_the_server_sent_them_when_chained() -> None:
    tools = Tools()
    model = ScriptedModel(_reused())
    _, result = await _run(_agent(model, tools, chain_responses=True))
    assert result.output == "2 and 4."
    second, third = model.requests[1].body, model.requests[2].body
    assert "previous_response_id" not in model.requests[0].body
    assert second["previous_response_id"] == "resp_scripted1"
    assert third["previous_response_id"] == "resp_scripted2"
    assert third["store"] is True
    # Only the new items, under the server's own id, though the run renamed the call.
    assert third["input"] == [{"type": "function_call_output", "call_id": "call_0", "output": "4"}]
    ids = [m["tool_call_id"] for m in result.messages if m["role"] == "tool"]
    assert ids[0] == "call_0"
    assert ids[1] != "call_0"


def _chat_script() -> list[Reply]:
    return [
        Reply(
            tool_calls=[
                ToolCall("add", {"a": 1, "b": 2}),
                ToolCall("add", {"a": "x", "b": 2}),
                ToolCall("missing", {}),
            ]
        ),
        Reply(tool_calls=[ToolCall("add", {"a": 10, "b": 20})]),
        Reply("Done."),
    ]


async def test_one_script_gives_the_same_results_on_both_wires() -> None:
    results = {}
    for api in ("chat", "responses"):
        tools = Tools()
        model = ScriptedModel(_chat_script())
        agent = Agent(client=model.async_client(), model="m", tools=tools.tools, api=api)
        _, result = await _run(agent)
        outputs = [m["content"] for m in result.messages if m["role"] == "tool"]
        results[api] = (result.output, result.stop_reason, tools.ran, outputs)
        assert all(r.api == api for r in model.requests)
    assert results["chat"] == results["responses"]
    assert results["chat"][2] == ["add 1 2", "add 10 20"]


async def test_the_offline_model_over_a_socket() -> None:
    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    async with anyio.create_task_group() as group:
        port = await group.start(serve, offline_model())
        client = openai.AsyncOpenAI(
            api_key="x", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
        )
        async with client:
            agent = Agent(client=client, model="m", tools=[get_weather], api="responses")
            events, result = await _run(agent, "What is the weather in Paris?")
        group.cancel_scope.cancel()
    assert result.stop_reason == "answer"
    assert [e.output for e in of(events, ToolFinished)] == ["sunny in Paris"]
    assert "Paris" in result.output


def test_chat_requests_never_carry_the_responses_key() -> None:
    from agentstream.wire.responses._request import CARRIED, chat_messages

    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "y", CARRIED: {"response_id": "r"}},
    ]
    assert chat_messages(messages) == [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "y"},
    ]
    plain = messages[:1]
    assert chat_messages(plain) is plain


async def test_done_without_a_terminal_event_is_a_cut_stream_and_retried() -> None:
    tools = Tools()
    call = ToolCall("add", {"a": 1, "b": 2}, id="call_a")
    whole = ScriptedModel([Reply(tool_calls=[call])])
    async with whole.async_client() as client:
        stream = await client.responses.create(model="m", input="x", stream=True)
        events = [event.model_dump() async for event in stream]
    cut = [e for e in events if not e["type"].startswith("response.completed")][:-2]
    model = ScriptedModel([Reply(chunks=[*cut, "[DONE]"]), Reply(tool_calls=[call]), Reply("3")])
    got, result = await _run(_agent(model, tools))
    assert result.output == "3"
    assert tools.ran == ["add 1 2"]  # once: the cut attempt's call never ran
    (interrupted,) = of(got, StepInterrupted)
    assert "ended early" in str(interrupted.error)


async def test_a_whole_json_answer_reads_as_its_terminal_event() -> None:
    from agentstream.wire.responses._stream import ResponsesStream

    body = {"id": "resp_1", "status": "incomplete", "output": []}
    assert ResponsesStream._whole_chunk(body) == {"type": "response.incomplete", "response": body}
    failed = {"id": "resp_2", "status": "completed", "error": {"message": "x"}}
    assert ResponsesStream._whole_chunk(failed)["type"] == "response.failed"


def test_the_responses_api_checks_its_own_request_fields() -> None:
    from agentstream import SetupError

    model = ScriptedModel([])
    with pytest.raises(SetupError, match="max_tokens"):
        Agent(client=model.async_client(), model="m", api="responses", max_tokens=5)
    with pytest.raises(SetupError, match="input"):
        Agent(client=model.async_client(), model="m", api="responses", input="x")
    with pytest.raises(SetupError, match="api must be"):
        Agent(client=model.async_client(), model="m", api="soap")  # type: ignore[arg-type]
    agent = Agent(client=model.async_client(), model="m", api="responses", max_output_tokens=5)
    assert agent.replace(model="n").api == "responses"


def test_typed_output_and_a_text_format_are_not_both_given() -> None:
    from agentstream import SetupError

    model = ScriptedModel([])
    with pytest.raises(SetupError, match="output_type"):
        Agent(
            client=model.async_client(), model="m", api="responses", output_type=int,
            text={"format": {"type": "json_object"}},
        )  # fmt: skip
