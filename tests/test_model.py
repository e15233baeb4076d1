"""One request to the model: the SDK sends it, agentstream reads the body."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest

from agentstream import Agent, ModelError, Retries, SetupError, tool

pytestmark = pytest.mark.anyio


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def json_server(bodies: list[dict[str, object]], status: int = 200) -> httpx2.MockTransport:
    """A server that ignores `stream` and answers each request with a whole JSON body."""
    answers = iter(bodies)

    def handle(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, json=next(answers))

    return httpx2.MockTransport(handle)


def completion(message: dict[str, object], finish: str) -> dict[str, object]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


async def test_server_that_ignores_stream_still_works() -> None:
    call = {
        "id": "t1",
        "type": "function",
        "function": {"name": "add", "arguments": '{"a":2,"b":3}'},
    }
    transport = json_server(
        [
            completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"),
            completion({"role": "assistant", "content": "5"}, "stop"),
        ]
    )
    async with openai.AsyncOpenAI(
        api_key="k",
        base_url="http://json.test/v1",
        http_client=httpx2.AsyncClient(transport=transport),
    ) as client:
        result = await Agent(client=client, model="m", tools=[add]).run("2+3?")
    assert result.output == "5"
    assert result.messages[2] == {"role": "tool", "tool_call_id": "t1", "content": "5"}
    assert result.usage.total_tokens == 16


@pytest.mark.parametrize(
    ("status", "fragment"),
    [
        pytest.param(401, "401", id="bad-key"),
        pytest.param(404, "404", id="unknown-model"),
    ],
)
async def test_http_errors_are_model_errors_without_the_key(status: int, fragment: str) -> None:
    transport = json_server(
        [{"error": {"message": "nope", "type": "invalid_request_error"}}], status
    )
    async with openai.AsyncOpenAI(
        api_key="sk-very-secret",
        base_url="http://json.test/v1",
        http_client=httpx2.AsyncClient(transport=transport),
        max_retries=0,
    ) as client:
        with pytest.raises(ModelError) as info:
            await Agent(client=client, model="m").run("hi")
    assert info.value.status_code == status
    assert fragment in str(info.value)
    assert "sk-very-secret" not in repr(info.value) + str(info.value) + json.dumps(info.value.body)


async def test_unreachable_server_is_a_model_error() -> None:
    async with openai.AsyncOpenAI(
        api_key="k", base_url="http://127.0.0.1:1/v1", max_retries=0
    ) as client:
        with pytest.raises(ModelError, match="could not connect"):
            await Agent(client=client, model="m", retries=Retries(max_retries=0)).run("hi")


def _nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param({"metadata": {"deep": _nested(5000)}}, "nested", id="nested-too-deep"),
        pytest.param({"extra_headers": {"x-note": "caf\u00e9 \u2603"}}, "encoded", id="header"),
    ],
)
async def test_a_request_that_cannot_be_encoded_is_a_setup_error(
    extra: dict[str, Any], message: str
) -> None:
    transport = json_server([completion({"role": "assistant", "content": "5"}, "stop")])
    async with openai.AsyncOpenAI(
        api_key="k",
        base_url="http://json.test/v1",
        http_client=httpx2.AsyncClient(transport=transport),
    ) as client:
        with pytest.raises(SetupError, match=message):
            await Agent(client=client, model="m", **extra).run("hi")
