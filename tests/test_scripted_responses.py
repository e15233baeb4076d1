"""The scripted model on the Responses API: realistic events with `event:` lines, read by
the real `openai` client over real SSE, the fault switches, and the request read as chat."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import openai
import pytest

from agentstream.testing import Fault, Reply, ScriptedModel, ToolCall, offline_model, serve
from agentstream.wire.responses._assemble import ResponsesAssembler

pytestmark = pytest.mark.anyio

_TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


async def _events(model: ScriptedModel, **request: Any) -> list[dict[str, Any]]:
    """The events the SDK read, as plain dicts (checked by the SDK's own types first)."""
    async with model.async_client() as client:
        stream = await client.responses.create(model="m", stream=True, **request)
        return [event.model_dump() async for event in stream]


async def test_the_sdk_reads_text_reasoning_and_calls() -> None:
    reply = Reply(
        "Looking it up.",
        reasoning="The user wants weather.",
        tool_calls=[ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_weather", {})],
    )
    model = ScriptedModel([reply])
    events = await _events(
        model, input="weather?", tools=_TOOLS, include=["reasoning.encrypted_content"]
    )
    kinds = [event["type"] for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_item.added") == 4
    assert kinds.count("response.output_item.done") == 4
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "Looking it up."
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]
    assert final["output"][0]["encrypted_content"]
    assert final["output"][2]["arguments"] == '{"city": "Paris"}'
    assert final["output"][2]["call_id"] != final["output"][3]["call_id"]
    assert final["usage"]["total_tokens"] > 0


async def test_sse_has_event_lines() -> None:
    model = ScriptedModel([Reply("hi")])
    async with httpx2.AsyncClient(transport=model.async_transport()) as http:
        response = await http.post(
            "http://m.invalid/v1/responses", json={"model": "m", "input": "x", "stream": True}
        )
    lines = response.text.splitlines()
    named = [line for line in lines if line.startswith("event: ")]
    data = [line for line in lines if line.startswith("data: ")]
    assert len(named) == len(data) > 5
    assert named[-1] == "event: response.completed"
    assert "data: [DONE]" not in lines


async def test_length_ends_incomplete_with_the_last_call_cut() -> None:
    calls = [ToolCall("get_weather", {"city": "Oslo"}), ToolCall("get_weather", {"city": "Rome"})]
    model = ScriptedModel([Reply(tool_calls=calls, finish_reason="length")])
    events = await _events(model, input="x")
    assembler = ResponsesAssembler()
    for event in events:
        assembler.feed(event)
    output = assembler.finish()
    assert output.status == "incomplete"
    assert output.incomplete_reason == "max_output_tokens"
    assert output.cut_calls == (1,)
    assert output.tool_calls[0].arguments == '{"city": "Oslo"}'


async def test_error_after_sends_error_and_failed() -> None:
    model = ScriptedModel([Reply("one two three", fault=Fault(error_after=3, message="boom"))])
    events = await _events(model, input="x")
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1]["response"]["error"]["message"] == "boom"


async def test_drop_after_breaks_the_body() -> None:
    model = ScriptedModel([Reply("one two three", fault=Fault(drop_after=3))])
    with pytest.raises(openai.APIConnectionError):
        await _events(model, input="x")


async def test_status_fault_is_an_http_error() -> None:
    model = ScriptedModel([Reply(fault=Fault(status=429, retry_after=0))])
    with pytest.raises(openai.RateLimitError):
        await _events(model, input="x")


async def test_request_reads_as_chat_messages_and_tools() -> None:
    model = ScriptedModel([Reply("ok")])
    items = [
        {"role": "developer", "content": "Be short."},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "e"},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "c2", "output": "rain"},
    ]
    await _events(model, instructions="You help.", input=items, tools=_TOOLS)
    request = model.requests[0]
    assert request.api == "responses"
    assert request.messages == [
        {"role": "system", "content": "You help."},
        {"role": "system", "content": "Be short."},
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "rain"},
    ]
    assert request.tools == [
        {"type": "function", "function": {k: v for k, v in _TOOLS[0].items() if k != "type"}}
    ]


async def test_offline_model_answers_responses_over_a_socket() -> None:
    model = offline_model()
    async with anyio.create_task_group() as group:
        port = await group.start(serve, model)
        async with openai.AsyncOpenAI(
            api_key="x", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
        ) as client:
            stream = await client.responses.create(
                model="m", input="What is the weather in Paris?", tools=_TOOLS, stream=True
            )
            events = [event.model_dump() async for event in stream]
        group.cancel_scope.cancel()
    calls = [item for item in events[-1]["response"]["output"] if item["type"] == "function_call"]
    assert [call["name"] for call in calls] == ["get_weather"]
    assert "Paris" in calls[0]["arguments"]


async def test_the_offline_model_reads_a_responses_tool_choice() -> None:
    model = offline_model()
    events = await _events(
        model,
        input="hello there",
        tools=_TOOLS,
        tool_choice={"type": "function", "name": "get_weather"},
    )
    calls = [i for i in events[-1]["response"]["output"] if i["type"] == "function_call"]
    assert [call["name"] for call in calls] == ["get_weather"]
