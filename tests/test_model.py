"""One request to the model: the SDK sends it, agentstream reads the body."""

from __future__ import annotations

import json
import zlib
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


# --- the body's bytes: read straight from the transport unless they are compressed


def _sse_answer(words: list[str]) -> bytes:
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [{"choices": [{"index": 0, "delta": {"content": word}}]} for word in words]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events = [f"data: {json.dumps({'id': 'c', 'model': 'm', **c})}\n\n" for c in chunks]
    return ("".join(events) + "data: [DONE]\n\n").encode()


class _Pieces(httpx2.AsyncByteStream):
    """A body sent in small pieces by a plain async iterator (no `aclose`, no generator)."""

    def __init__(self, body: bytes, size: int) -> None:
        self._pieces = [body[i : i + size] for i in range(0, len(body), size)]
        self.closed = False

    def __aiter__(self) -> _Pieces:
        return self

    async def __anext__(self) -> bytes:
        if not self._pieces:
            raise StopAsyncIteration
        return self._pieces.pop(0)

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.parametrize("encoding", [None, "identity", "gzip", "deflate"])
async def test_a_body_is_read_whole_whatever_its_content_encoding(encoding: str | None) -> None:
    words = [f" w{i}" for i in range(40)]
    body = _sse_answer(words)
    headers = {"content-type": "text/event-stream"}
    if encoding == "gzip":
        packer = zlib.compressobj(wbits=31)
        body = packer.compress(body) + packer.flush()
    elif encoding == "deflate":
        body = zlib.compress(body)
    if encoding is not None:
        headers["content-encoding"] = encoding
    streams: list[_Pieces] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        streams.append(_Pieces(body, 7))  # pieces cut across events and compressed blocks
        return httpx2.Response(200, headers=headers, stream=streams[-1])

    transport = httpx2.MockTransport(handle)
    async with openai.AsyncOpenAI(
        api_key="k",
        base_url="http://sse.test/v1",
        http_client=httpx2.AsyncClient(transport=transport),
    ) as client:
        result = await Agent(client=client, model="m").run("hi")
    assert result.output == "".join(words)
    assert streams[0].closed
