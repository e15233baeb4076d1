"""A durable web app whose tools read `ctx.deps` (a child process of a test).

Run by tests/test_web_durable_deps.py:

    python tests/dbos_app/web_deps.py DB_URL PORT MODEL_PORT

`create_app(..., deps=...)` turns each request into plain data (the user it names); the
DurableAgent's `deps` factory makes the run's deps of it in the worker that runs the
workflow (here: the user, and the `WORKER` that made them). `whoami` waits `TOOL_SLEEP`
seconds, then says both.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from typing import Any

import uvicorn
from dbos import DBOS
from starlette.requests import Request

from agentstream import Agent, ToolContext, tool
from agentstream.dbos import DurableAgent
from agentstream.web import create_app

DB_URL, PORT, MODEL_PORT = sys.argv[1], int(sys.argv[2]), sys.argv[3]


@dataclass
class Deps:
    user: str
    worker: str


@tool(idempotent=True)  # cut by the kill, it runs again on the worker that recovers
async def whoami(ctx: ToolContext[Deps]) -> str:
    """Say who the user is."""
    await asyncio.sleep(float(os.environ.get("TOOL_SLEEP", "0")))
    return f"{ctx.deps.user}, made by {ctx.deps.worker}"


def make_deps(data: dict[str, Any]) -> Deps:
    """In the worker: the run's deps of what the request gave (a pool would be opened here)."""
    return Deps(user=data["user"], worker=os.environ["WORKER"])


def user_of(request: Request) -> dict[str, Any]:
    """Per request, plain data: it is stored with the workflow."""
    return {"user": request.headers.get("x-user", "nobody")}


async def main() -> None:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{MODEL_PORT}/v1", api_key="k", max_retries=0)
    agent = Agent(client=client, model="m", tools=[whoami])
    DBOS(config={"name": "agentstream-deps", "system_database_url": DB_URL,
                 "application_version": "deps-1", "executor_id": "web"})  # fmt: skip
    durable = DurableAgent(agent, name="web", events_url=DB_URL, deps=make_deps)
    DBOS.launch()
    app = create_app(agent, durable=durable, deps=user_of)
    config = uvicorn.Config(app, host="127.0.0.1", port=PORT, log_level="warning")
    try:
        await uvicorn.Server(config).serve()
    finally:
        DBOS.destroy()


asyncio.run(main())
