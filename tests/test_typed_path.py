"""The fast path and the SDK's typed path assemble the same streams into the same events.

agentstream reads the body itself (`ModelStream` yields dicts); whoever iterates the
`openai` client with `stream=True` gets `ChatCompletionChunk` objects instead. Both go
through the real SDK and real SSE bytes, and `StreamAssembler` must not tell them apart.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from agentstream import StreamAssembler, StreamEvent
from agentstream.testing import Reply, ScriptedModel, ToolCall
from agentstream.wire._message import AssembledResponse
from agentstream.wire.chat._stream import ModelStream

from ._streams import load_chunks, stream_params

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings(
        r"ignore:Async generator '(openai|httpx2|httpcore2)\.:ResourceWarning"
    ),
]

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "go"}]
LONG = {"path": "notes.txt", "text": "lorem ipsum dolor " * 60}


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"call_generated_{next(counter)}"


def assemble(chunks: Sequence[Any]) -> tuple[list[StreamEvent], AssembledResponse]:
    assembler = StreamAssembler(new_id=ids())
    events = [event for chunk in chunks for event in assembler.feed(chunk)]
    return events, assembler.finish()


async def typed_chunks(client: openai.AsyncOpenAI) -> list[Any]:
    """The SDK's chunk objects, up to an error payload (where the SDK raises)."""
    chunks: list[Any] = []
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    async with stream:
        try:
            async for chunk in stream:
                chunks.append(chunk)
        except openai.APIError:
            pass
    return chunks


async def dict_chunks(client: openai.AsyncOpenAI) -> list[dict[str, Any]]:
    params = {"model": "m", "messages": MESSAGES, "stream": True}
    async with aclosing(ModelStream(client, params).chunks()) as chunks:
        return [chunk async for chunk in chunks]


async def both_paths(reply: Reply) -> None:
    # One model per path, so that both get the same completion id and call ids.
    async with ScriptedModel([reply]).async_client() as client:
        typed = await typed_chunks(client)
    async with ScriptedModel([reply]).async_client() as client:
        plain = await dict_chunks(client)
    assert typed, "the SDK delivered no chunk"
    if len(typed) < len(plain):
        # The SDK raises at an error payload; compare what both delivered before it.
        assert "error" in plain[len(typed)]
        plain = plain[: len(typed)]
    assert len(typed) == len(plain)
    typed_events, typed_response = assemble(typed)
    plain_events, plain_response = assemble(plain)
    assert typed_events == plain_events
    assert typed_response == plain_response


@pytest.mark.parametrize("name", stream_params())
async def test_recorded_stream(name: str) -> None:
    chunks: list[Mapping[str, Any] | str] = list(load_chunks(name))
    await both_paths(Reply(chunks=chunks))


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply("Hello there, how are you?"), id="text"),
        pytest.param(Reply("Sure.", reasoning="Think first, then answer."), id="reasoning"),
        pytest.param(
            Reply(
                "Two calls.",
                tool_calls=[ToolCall("write", LONG), ToolCall("read", {"path": "a"})],
                piece_size=3,
            ),
            id="long-arguments-two-calls",
        ),
        pytest.param(Reply(refusal="I cannot help with that."), id="refusal"),
        pytest.param(
            Reply(tool_calls=[ToolCall("write", LONG), ToolCall("read")], dialect="mistral"),
            id="mistral",
        ),
        pytest.param(Reply("hi", tool_calls=[ToolCall("read")], dialect="ollama"), id="ollama"),
        pytest.param(
            Reply(
                chunks=[
                    {"choices": [{"delta": {"tool_calls": [{"function": {"name": "f"}}]}}]},
                    {"choices": [{"delta": {"tool_calls": [{"function": {"arguments": "{}"}}]}}]},
                    {"choices": [{"delta": {}, "finish_reason": "tool_calls"}]},
                ]
            ),
            id="no-index-no-id",
        ),
    ],
)
async def test_scripted_stream(reply: Reply) -> None:
    await both_paths(reply)
