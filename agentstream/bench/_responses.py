"""The Responses API beside Chat Completions in the e2e section: three readers.

- `bare`: httpx2 posting the agent's own request bodies to `/responses`, the body split
  at blank lines, the `data:` line of each event read by `json.loads` (the floor);
- `sdk`: the `openai` client's `responses.create(stream=True)`, iterating its typed
  events;
- `agent`: `Agent(api="responses").stream()`, tools and all.

Each run makes the two requests an agent run makes (the calls, then the answer), so
the three read the same events; figures are events a second and the ratio to `bare`
in the same repetition.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
import openai

from .._agent import Agent
from ..testing import ScriptedModel
from ._clients import _LIMITS, _PROMPT, lookup

__all__ = ["ResponsesClients", "responses_bodies"]


async def responses_bodies(policy: Any) -> list[dict[str, Any]]:
    """The Responses request bodies one agent run sends, recorded in-process."""
    model = ScriptedModel(policy)
    async with model.async_client() as client:
        agent = Agent(client=client, model="bench", tools=[lookup], api="responses")
        await agent.run(_PROMPT)
    return [dict(request.body) for request in model.requests]


class ResponsesClients:
    """The three Responses readers over one server; each run returns its event count."""

    def __init__(self, base_url: str, bodies: list[dict[str, Any]]) -> None:
        self.url = base_url + "/responses"
        self.bodies = bodies
        self.http = httpx2.AsyncClient(limits=_LIMITS, timeout=600)
        self.sdk = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
        self.agent_client = openai.AsyncOpenAI(base_url=base_url, api_key="bench")
        self.agent = Agent(client=self.agent_client, model="bench", tools=[lookup], api="responses")

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.sdk.close()
        await self.agent_client.close()

    def runner(self, kind: str) -> Callable[[], Awaitable[int]]:
        return {"bare": self.bare_run, "sdk": self.sdk_run, "agent": self.agent_run}[kind]

    async def bare_run(self) -> int:
        events = 0
        headers = {"authorization": "Bearer bench"}
        for body in self.bodies:
            request = self.http.build_request("POST", self.url, json=body, headers=headers)
            response = await self.http.send(request, stream=True)
            try:
                buffer = b""
                async for raw in response.aiter_bytes():
                    buffer = buffer + raw if buffer else raw
                    *blocks, buffer = buffer.split(b"\n\n")
                    for block in blocks:
                        data = block[block.index(b"data: ") + 6 :]
                        json.loads(data)
                        events += 1
            finally:
                await response.aclose()
        return events

    async def sdk_run(self) -> int:
        events = 0
        for body in self.bodies:
            stream = await self.sdk.responses.create(**body)
            async with stream:
                async for _ in stream:
                    events += 1
        return events

    async def agent_run(self) -> int:
        async with self.agent.stream(_PROMPT) as run:
            async for _ in run:
                pass
        return 0
