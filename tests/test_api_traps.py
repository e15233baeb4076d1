"""What tripped a new user of the API, each now right or a SetupError that shows the way:
an Agent without `client=`, `run_sync` again and again with a client instance,
`async for` over `stream()` without `async with`, and per-run `deps` for tools (typed:
mypy checks this file), also through the web adapter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2
import openai
import pytest
from anyio.from_thread import start_blocking_portal
from starlette.requests import Request
from typing_extensions import assert_type

from agentstream import Agent, SetupError, ToolContext, tool
from agentstream.testing import ModelRequest, Reply, ScriptedModel, ToolCall, serve
from agentstream.web import create_app

from ._web import running_server


@dataclass(frozen=True)
class User:
    name: str


@tool
def whoami(ctx: ToolContext[User]) -> str:
    """Say who the user is."""
    assert_type(ctx.deps, User)  # mypy sees the run's deps type through ToolContext[User]
    return f"you are {ctx.deps.name}"


def answer_with_tool(request: ModelRequest) -> Reply:
    """Call `whoami` once, then answer with its result."""
    results = [m["content"] for m in request.messages if m["role"] == "tool"]
    if results:
        return Reply(f"answer: {results[-1]}")
    return Reply(tool_calls=[ToolCall("whoami", {})])


@pytest.fixture
def served() -> Iterator[str]:
    """The scripted model over real HTTP on loopback, from a thread of its own."""
    model = ScriptedModel(lambda request: Reply("hello"))
    with start_blocking_portal() as portal:
        future, port = portal.start_task(serve, model)
        try:
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            future.cancel()


def test_agent_without_client_reads_the_environment(
    served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", served)
    agent = Agent(model="scripted")
    assert agent.run_sync("hi").output == "hello"
    assert agent.run_sync("hi again").output == "hello"  # a client per run


def test_agent_without_client_or_environment_is_a_setup_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(SetupError, match="neither OPENAI_API_KEY nor OPENAI_BASE_URL"):
        Agent(model="gpt-4o-mini")


def test_run_sync_three_times_with_a_client_instance(served: str) -> None:
    client = openai.AsyncOpenAI(api_key="unused", base_url=served, max_retries=0)
    agent = Agent(client=client, model="scripted")  # as the first example of the docs
    outputs = [agent.run_sync(f"hi {n}").output for n in range(3)]
    assert outputs == ["hello"] * 3
    with agent.stream_sync("and a stream") as run:  # the same loop, the same instance
        assert [event.type for event in run][-1] == "run_finished"
    assert agent.run_sync("once more").output == "hello"
    agent.close_sync()  # its connections, kept on the agent's loop, are closed there


@pytest.mark.anyio
async def test_iterating_stream_without_async_with_shows_the_right_form() -> None:
    model = ScriptedModel(lambda request: Reply("hello"))
    agent = Agent(client=model.async_client, model="scripted")
    with pytest.raises(SetupError, match=r"async with agent\.stream\(prompt\) as run"):
        async for _ in agent.stream("hi"):
            pass


@pytest.mark.anyio
async def test_deps_reach_the_tools_of_each_run() -> None:
    model = ScriptedModel(answer_with_tool)
    agent = Agent(client=model.async_client, model="scripted", tools=[whoami])
    ann, bob = await agent.run("who?", deps=User("Ann")), await agent.run("who?", deps=User("Bob"))
    assert (ann.output, bob.output) == ("answer: you are Ann", "answer: you are Bob")
    async with agent.stream("who?", deps=User("Cy")) as run:
        async for _ in run:
            pass
    assert run.result.output == "answer: you are Cy"


def test_deps_with_run_sync_and_refused_on_the_agent() -> None:
    model = ScriptedModel(answer_with_tool)
    agent = Agent(client=model.async_client, model="scripted", tools=[whoami])
    assert agent.run_sync("who?", deps=User("Dee")).output == "answer: you are Dee"
    with pytest.raises(SetupError, match=r"agent.run\(prompt, deps=...\)"):
        Agent(client=model.async_client, model="scripted", deps=User("x"))


def test_deps_from_each_web_request() -> None:
    model = ScriptedModel(answer_with_tool)
    agent = Agent(client=model.async_client, model="scripted", tools=[whoami])

    def user_of(request: Request) -> User:
        return User(request.headers["x-user"])

    with running_server(create_app(agent, deps=user_of)) as url:
        outputs = []
        for name in ("Eve", "Finn"):
            response = httpx2.post(
                f"{url}/api/events", json={"prompt": "who?"}, headers={"x-user": name},
                timeout=30,
            )  # fmt: skip
            finished = [
                json.loads(line[len("data: ") :])
                for line in response.text.splitlines()
                if line.startswith("data: ") and "run_finished" in line
            ]
            outputs.append(finished[-1]["result"]["output"])
    assert outputs == ["answer: you are Eve", "answer: you are Finn"]
