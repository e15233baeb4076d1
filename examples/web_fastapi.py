"""Mount agentstream's web app in FastAPI: the chat page, `useChat`'s endpoint, JSON events.

Run it with `python examples/web_fastapi.py` (needs `agentstream[web]` and fastapi) and
open http://127.0.0.1:8001/agent/. Offline unless OPENAI_API_KEY or OPENAI_BASE_URL is
set (then OPENAI_MODEL picks the model, gpt-4o-mini by default).

Under `/agent`: the page at `/`, the AI SDK UI message stream at `POST /api/chat` (point
`useChat`'s transport there), reattaching at `GET /api/chat/{id}/stream`, and
agentstream's own JSON events at `POST /api/events`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI
from openai import AsyncOpenAI

from agentstream import Agent
from agentstream.testing import offline_model
from agentstream.web import create_app, demo_tools


def client_factory() -> Callable[[], AsyncOpenAI]:
    """Makes a client per run: a real provider when one is configured, else offline."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        return lambda: AsyncOpenAI(api_key=os.environ.get("OPENAI_API_KEY") or "unused")
    return offline_model(ttft=0.3, tokens_per_second=40).async_client


def build_api(agent: Agent) -> FastAPI:
    api = FastAPI()

    @api.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    api.mount("/agent", create_app(agent, max_body_size=200_000))
    return api


model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
api = build_api(Agent(client=client_factory(), model=model, tools=demo_tools()))

if __name__ == "__main__":
    uvicorn.run(api, host="127.0.0.1", port=8001)
