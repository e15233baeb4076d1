"""Servers that send exactly the bytes a test gives, through the real `openai` client.

`RawServer` answers over `httpx2.MockTransport`: the hostile bytes reach agentstream as
any server's would, through the SDK, with no patching.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import openai

from agentstream import Agent, Retries, event_to_dict

KEY = "sk-proj-Zq8w3ExampleKeyThatMustNeverShow0123"
NO_RETRIES = Retries(max_retries=0)


@dataclass
class RawServer:
    """Answers each request with the next (content type, body) as raw bytes; keeps requests."""

    answers: list[tuple[str, bytes]]
    requests: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(json.loads(request.content))
        content_type, body = self.answers[len(self.requests) - 1]
        return httpx2.Response(200, headers={"content-type": content_type}, content=body)

    def client(self, api_key: str = KEY) -> openai.AsyncOpenAI:
        transport = httpx2.MockTransport(self.handle)
        return openai.AsyncOpenAI(
            api_key=api_key,
            base_url="http://hostile.test/v1",
            http_client=httpx2.AsyncClient(transport=transport),
            max_retries=0,
        )


def sse(*payloads: str | dict[str, Any], done: bool = True) -> tuple[str, bytes]:
    """An SSE body: each payload a `data:` line (dicts as JSON); raw `event:` lines kept."""
    lines = []
    for payload in payloads:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        lines.append(text if text.startswith("event:") else f"data: {text}\n\n")
    if done:
        lines.append("data: [DONE]\n\n")
    return "text/event-stream", "".join(lines).encode()


def text_chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


def call_chunk(index: int, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    fragment = {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    return {"choices": [{"index": 0, "delta": {"tool_calls": [fragment]}}]}


FINISH_TOOLS = {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}


async def run_all(server: RawServer, *tools: Any, **options: Any) -> tuple[list[Any], Any]:
    """Run to the end; the events, and the error (None on success)."""
    options.setdefault("retries", NO_RETRIES)
    events: list[Any] = []
    error: BaseException | None = None
    async with server.client() as client:
        agent = Agent(client=client, model="m", tools=tools, **options)
        with anyio.fail_after(30):
            try:
                async with agent.stream("go") as run:
                    async for event in run:
                        events.append(event)
            except Exception as exc:
                error = exc
    return events, error


def shown(events: list[Any], error: BaseException | None) -> str:
    parts = [repr(event) for event in events]
    parts += [json.dumps(event_to_dict(event), default=str) for event in events]
    if error is not None:
        parts += [str(error), repr(error), "".join(traceback.format_exception(error))]
        parts.append(repr(getattr(error, "body", None)))
    return "\n".join(parts)


def pieces_of(secret: str, size: int = 8) -> Iterator[str]:
    """Every substring of `secret` of `size` characters: none may show."""
    return (secret[i : i + size] for i in range(len(secret) - size + 1))


def assert_no_piece_of_key(text: str) -> None:
    leaked = [piece for piece in pieces_of(KEY) if piece in text]
    assert not leaked, f"part of the key shows: {leaked[:3]}"
