"""The API key never shows: not in events, errors, tracebacks, reprs or logs.

Servers and proxies do echo keys in error messages ("Incorrect API key provided:
sk-..."), so every case here has the scripted model quote the key back.
"""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

import anyio
import pytest

from agentstream import (
    Agent,
    FallbackUsed,
    ModelError,
    Retries,
    RetriesExhausted,
    ServerError,
    StepInterrupted,
    ToolFinished,
    event_to_dict,
    tool,
)
from agentstream.testing import Fault, ModelRequest, Reply, ScriptedModel, ToolCall

pytestmark = pytest.mark.anyio

KEY = "sk-proj-Zq8w3ExampleKeyThatMustNeverShow0123"
ECHO = f"Incorrect API key provided: {KEY}. You can find your key at ..."


def everything_shown(events: list[Any], error: BaseException | None, *objects: Any) -> str:
    """All the text a program could show or log about a run."""
    parts = [repr(event) for event in events]
    parts += [json.dumps(event_to_dict(event), default=str) for event in events]
    if error is not None:
        parts += [str(error), repr(error), "".join(traceback.format_exception(error))]
    parts += [repr(item) for item in objects]
    return "\n".join(parts)


async def run_to_end(agent: Agent) -> tuple[list[Any], BaseException | None, Any]:
    events: list[Any] = []
    error: BaseException | None = None
    with anyio.fail_after(20):
        try:
            async with agent.stream("go") as run:
                async for event in run:
                    events.append(event)
        except Exception as exc:
            error = exc
    return events, error, run


async def test_a_key_echoed_in_an_http_error_is_masked() -> None:
    model = ScriptedModel([Reply(fault=Fault(status=401, message=ECHO))])
    agent = Agent(client=model.async_client(api_key=KEY), model="m")
    events, error, run = await run_to_end(agent)

    assert isinstance(error, ModelError)
    assert error.status_code == 401
    assert "Incorrect API key provided: ***" in str(error)
    assert KEY not in everything_shown(events, error, agent, run, error.body)


async def test_a_key_echoed_in_a_stream_error_is_masked_through_every_retry() -> None:
    model = ScriptedModel([Reply("a", fault=Fault(error_after=1, message=ECHO))] * 3)
    agent = Agent(client=model.async_client(api_key=KEY), model="m", retries=Retries(backoff=0.001))
    events, error, run = await run_to_end(agent)

    assert isinstance(error, RetriesExhausted)
    assert len([e for e in events if isinstance(e, StepInterrupted)]) == 3
    [first, *_] = [e for e in events if isinstance(e, ServerError)]
    assert "***" in first.message
    assert KEY not in everything_shown(events, error, agent, run)


async def test_the_key_is_not_in_any_log_record(caplog: pytest.LogCaptureFixture) -> None:
    @tool
    def fail() -> str:
        """Fail."""
        raise RuntimeError("broken")

    model = ScriptedModel(
        [Reply(tool_calls=[ToolCall("fail")]), Reply("b", fault=Fault(status=401, message=ECHO))]
    )
    agent = Agent(client=model.async_client(api_key=KEY), model="m", tools=[fail])
    with caplog.at_level(logging.DEBUG):
        _events, error, _ = await run_to_end(agent)
    assert isinstance(error, ModelError)
    assert caplog.records  # the SDK and its HTTP library did log the requests
    assert KEY not in caplog.text


async def test_a_tool_exception_reaches_the_model_short_and_the_program_whole() -> None:
    @tool
    def fail() -> str:
        """Fail deep inside."""

        def inner() -> str:
            raise ValueError("the input was odd")

        return inner()

    model = ScriptedModel([Reply(tool_calls=[ToolCall("fail")]), Reply("sorry")])
    agent = Agent(client=model.async_client(api_key=KEY), model="m", tools=[fail])
    events, error, run = await run_to_end(agent)

    assert error is None
    [finished] = [e for e in events if isinstance(e, ToolFinished)]
    assert finished.output == "ValueError: the input was odd"
    assert run.result.messages[2]["content"] == "ValueError: the input was odd"
    assert isinstance(finished.error, ValueError)
    frames = traceback.extract_tb(finished.error.__traceback__)
    assert [frame.name for frame in frames][-1] == "inner"  # the whole trace, for the program
    assert "Traceback" not in json.dumps(run.result.messages)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(Fault(status=500, message=ECHO), id="http-error"),
        pytest.param(Fault(error_after=1, message=ECHO), id="stream-error"),
    ],
)
async def test_a_fallback_clients_key_is_masked_too(failure: Fault) -> None:
    def answer(request: ModelRequest) -> Reply:
        return Reply(fault=Fault(status=503)) if request.model == "a" else Reply("b", fault=failure)

    model = ScriptedModel(answer)
    agent = Agent(
        client=model.async_client(), model="a", retries=Retries(max_retries=0),
        fallback=[(model.async_client(api_key=KEY), "b")],
    )  # fmt: skip
    events, error, run = await run_to_end(agent)

    assert isinstance(error, RetriesExhausted)
    assert [e.model for e in events if isinstance(e, FallbackUsed)] == ["b"]
    assert "***" in str(error)
    assert KEY not in everything_shown(events, error, agent, run)
