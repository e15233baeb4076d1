"""Failed steps are tried again: before any output and after partial output.

Every case drives the real `openai` client over the scripted model's SSE, with the
failure acted out by the model (`Fault`), and checks what the user sees (events, the
result, the error) and what the server received (the requests).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import anyio
import pytest

from agentstream import (
    Agent,
    ModelError,
    Retries,
    RetriesExhausted,
    RunFailed,
    RunTimeout,
    StepInterrupted,
    StepStarted,
    StreamError,
    TextDelta,
    Timeouts,
    ToolFinished,
)
from agentstream.loop._retries import retryable
from agentstream.testing import Fault, Reply, ScriptedModel, ToolCall
from agentstream.wire.chat._stream import retry_after

from . import _helpers as helpers
from ._helpers import Recorder, of

pytestmark = pytest.mark.anyio

FAST = Retries(backoff=0.001, max_backoff=0.002)


async def run_events(model: ScriptedModel, *tools: Any, **options: Any) -> tuple[list[Any], Any]:
    options.setdefault("retries", FAST)
    return await helpers.run_events(model, *tools, **options)


# --- before any output -----------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault(status=429), id="429"),
        pytest.param(Fault(status=500), id="500"),
        pytest.param(Fault(status=503), id="503"),
        pytest.param(Fault(status=408), id="408"),
    ],
)
async def test_a_request_refused_for_now_is_tried_again(fault: Fault) -> None:
    model = ScriptedModel([Reply(fault=fault), Reply("fine now")])
    events, run = await run_events(model)

    assert run.result.output == "fine now"
    assert len(model.requests) == 2
    assert model.requests[0].messages == model.requests[1].messages
    [interrupted] = of(events, StepInterrupted)
    assert interrupted.attempt == 1
    assert isinstance(interrupted.error, ModelError)
    assert interrupted.error.status_code == fault.status
    assert (interrupted.retracted_text, interrupted.retracted_calls) == ("", ())
    assert interrupted.retry_in is not None
    assert 0 < interrupted.retry_in <= 0.002
    assert [(e.step, e.attempt) for e in of(events, StepStarted)] == [(1, 1), (1, 2)]
    assert run.result.steps[0].attempts == 2


async def test_retry_after_is_honoured() -> None:
    model = ScriptedModel([Reply(fault=Fault(status=429, retry_after=0.05)), Reply("ok")])
    started = anyio.current_time()
    events, run = await run_events(model)

    [interrupted] = of(events, StepInterrupted)
    assert interrupted.retry_in == pytest.approx(0.05)
    assert interrupted.error.retry_after == pytest.approx(0.05)
    assert anyio.current_time() - started >= 0.05
    assert run.result.output == "ok"


async def test_a_server_asking_to_wait_too_long_is_not_retried() -> None:
    model = ScriptedModel([Reply(fault=Fault(status=429, retry_after=600)), Reply("late")])
    with pytest.raises(ModelError, match="429") as info:
        await run_events(model, retries=Retries(max_retry_after=30))
    assert info.value.retry_after == 600
    assert len(model.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_a_request_that_is_wrong_is_not_retried(status: int) -> None:
    model = ScriptedModel([Reply(fault=Fault(status=status)), Reply("never sent")])
    with pytest.raises(ModelError) as info:
        await run_events(model)
    assert info.value.status_code == status
    assert len(model.requests) == 1


async def test_when_every_attempt_fails_the_error_lists_them() -> None:
    model = ScriptedModel([Reply(fault=Fault(status=503)) for _ in range(3)] + [Reply("x")])
    events: list[Any] = []
    with pytest.raises(RetriesExhausted) as info:
        agent = Agent(client=model.async_client(), model="m", retries=FAST)
        async with agent.stream("go") as run:
            async for event in run:
                events.append(event)

    error = info.value
    assert len(error.errors) == 3
    assert all(isinstance(e, ModelError) and e.status_code == 503 for e in error.errors)
    assert "all 3 attempts" in str(error)
    assert "503" in str(error)
    assert error.__cause__ is error.errors[-1]
    assert len(model.requests) == 3
    interrupted = of(events, StepInterrupted)
    assert [e.retry_in is None for e in interrupted] == [False, False, True]
    assert of(events, RunFailed)[0].error is error
    assert run.messages == [{"role": "user", "content": "go"}]


async def test_an_unreachable_server_is_tried_again_then_reported() -> None:
    import openai

    async with openai.AsyncOpenAI(api_key="k", base_url="http://127.0.0.1:1/v1") as client:
        agent = Agent(client=client, model="m", retries=FAST)
        with pytest.raises(RetriesExhausted, match="could not connect") as info:
            await agent.run("hi")
    assert len(info.value.errors) == 3


async def test_the_clients_own_retries_are_off_while_the_runs_are_on() -> None:
    model = ScriptedModel([Reply(fault=Fault(status=503))] * 10)
    client = model.async_client(max_retries=4)
    with pytest.raises(RetriesExhausted):
        await Agent(client=client, model="m", retries=Retries(max_retries=1, backoff=0)).run("go")
    assert len(model.requests) == 2  # not (1 + 4) * 2
    assert client.max_retries == 4  # the user's client is left as it was


async def test_with_retries_off_the_clients_own_apply() -> None:
    model = ScriptedModel([Reply(fault=Fault(status=503, retry_after=0))] * 2 + [Reply("ok")])
    client = model.async_client(max_retries=2)
    result = await Agent(client=client, model="m", retries=Retries(max_retries=0)).run("go")
    assert result.output == "ok"
    assert len(model.requests) == 3


def _keyed(client: Any) -> Any:
    """`client` sending each request's idempotency key, as SDK clients that have one do."""
    client._idempotency_header = "Idempotency-Key"
    return client


async def test_each_attempt_has_its_own_idempotency_key() -> None:
    recorder = Recorder()
    model = ScriptedModel(
        [Reply(fault=Fault(status=503)), Reply(tool_calls=[ToolCall("act")]), Reply("done")]
    )
    client = _keyed(model.async_client())
    agent = Agent(client=client, model="m", tools=[recorder.tool], retries=FAST)
    async with agent.stream("go") as run:
        async for _ in run:
            pass
    keys = [request.headers["idempotency-key"] for request in model.requests]
    assert keys == [f"{run.run_id}-1-1", f"{run.run_id}-1-2", f"{run.run_id}-2-1"]


async def test_the_clients_own_retries_resend_the_same_key() -> None:
    model = ScriptedModel([Reply(fault=Fault(status=503, retry_after=0)), Reply("ok")])
    client = _keyed(model.async_client(max_retries=1))
    async with Agent(client=client, model="m", retries=Retries(max_retries=0)).stream("go") as run:
        async for _ in run:
            pass
    keys = [request.headers["idempotency-key"] for request in model.requests]
    assert keys == [f"{run.run_id}-1-1"] * 2


async def test_the_run_wide_budget_caps_retries_over_all_steps() -> None:
    recorder = Recorder()
    model = ScriptedModel(
        [
            Reply(fault=Fault(status=503)),
            Reply(tool_calls=[ToolCall("act")]),
            Reply(fault=Fault(status=503)),
            Reply("never sent"),
        ]
    )
    with pytest.raises(ModelError, match="503"):
        await run_events(model, recorder.tool, retries=Retries(budget=1, backoff=0))
    assert len(model.requests) == 3
    assert recorder.calls == 1


async def test_a_retry_that_would_outlast_the_run_is_not_made() -> None:
    model = ScriptedModel([Reply(fault=Fault(status=429, retry_after=5)), Reply("late")])
    with pytest.raises(ModelError, match="429"):
        await run_events(model, timeouts=Timeouts(run=1))
    assert len(model.requests) == 1


async def test_no_first_chunk_in_time_is_tried_again() -> None:
    model = ScriptedModel(
        [Reply("slow", fault=Fault(stall_after=0, stall_seconds=30)), Reply("ok")]
    )
    events, run = await run_events(model, timeouts=Timeouts(first_chunk=0.2))
    [interrupted] = of(events, StepInterrupted)
    assert isinstance(interrupted.error, RunTimeout)
    assert interrupted.error.limit == "first_chunk"
    assert run.result.output == "ok"


# --- after partial output --------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        pytest.param(Fault(drop_after=3), StreamError, id="dropped"),
        pytest.param(Fault(error_after=3), StreamError, id="error-payload"),
        pytest.param(Fault(malformed_after=3), StreamError, id="malformed"),
        pytest.param(Fault(stall_after=3, stall_seconds=30), RunTimeout, id="stalled"),
    ],
)
async def test_a_stream_broken_after_output_is_retracted_and_tried_again(
    fault: Fault, error: type[Exception]
) -> None:
    model = ScriptedModel([Reply("the first try went", fault=fault), Reply("second try")])
    events, run = await run_events(model, timeouts=Timeouts(idle=0.2))

    [interrupted] = of(events, StepInterrupted)
    assert isinstance(interrupted.error, error)
    shown = "".join(e.text for e in events[: events.index(interrupted)] if isinstance(e, TextDelta))
    assert shown
    assert interrupted.retracted_text == shown
    assert run.result.output == "second try"
    assert "first" not in str(run.result.messages)
    assert model.requests[0].messages == model.requests[1].messages


async def test_a_body_cut_without_finish_or_done_is_retracted_and_tried_again() -> None:
    recorder = Recorder()
    call = {"index": 0, "id": "c1", "function": {"name": "act", "arguments": "{}"}}
    delta = {"role": "assistant", "content": "Checking.", "tool_calls": [call]}
    cut = Reply(chunks=[{"choices": [{"index": 0, "delta": delta}]}], fault=Fault(no_done=True))
    model = ScriptedModel([cut, Reply("fine")])
    events, run = await run_events(model, recorder.tool)

    [interrupted] = of(events, StepInterrupted)
    assert "ended early" in str(interrupted.error)
    assert (interrupted.retracted_text, interrupted.retracted_calls) == ("Checking.", (0,))
    assert not recorder.ran
    assert run.result.output == "fine"


async def test_the_calls_of_a_broken_attempt_never_run() -> None:
    recorder = Recorder()
    # Six chunks: role, three of text, the call and its arguments; the break comes
    # before the finish reason, so the call looks whole but may not be.
    broken = Reply("Let me check.", tool_calls=[ToolCall("act")], fault=Fault(drop_after=6))
    model = ScriptedModel([broken, Reply(tool_calls=[ToolCall("act")]), Reply("done")])
    events, run = await run_events(model, recorder.tool)

    [interrupted] = of(events, StepInterrupted)
    assert interrupted.retracted_calls == (0,)
    assert interrupted.retracted_text == "Let me check."
    assert recorder.calls == 1
    [finished] = of(events, ToolFinished)
    assert finished.id == "call_2"  # the retried attempt's call, not the broken one's
    assistant = run.result.messages[1]
    assert [call["id"] for call in assistant["tool_calls"]] == ["call_2"]
    assert run.result.messages[2]["tool_call_id"] == "call_2"


async def test_results_of_earlier_steps_are_kept_when_a_later_step_is_retried() -> None:
    recorder = Recorder()
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("act")]),
            Reply("the answer is", fault=Fault(drop_after=2)),
            Reply("the answer is ok"),
        ]
    )
    _, run = await run_events(model, recorder.tool)

    assert recorder.calls == 1
    assert model.requests[1].messages == model.requests[2].messages
    assert model.requests[2].messages[-1] == {
        "role": "tool", "tool_call_id": "call_1", "content": "ok"
    }  # fmt: skip
    assert run.result.output == "the answer is ok"
    assert [step.attempts for step in run.result.steps] == [1, 2]


async def test_leaving_during_the_wait_before_a_retry_keeps_the_conversation() -> None:
    model = ScriptedModel([Reply("partial text", fault=Fault(drop_after=2)), Reply("x")])
    agent = Agent(client=model.async_client(), model="m", retries=Retries(backoff=30))
    with anyio.fail_after(5):
        async with agent.stream("go") as run:
            async for event in run:
                if isinstance(event, StepInterrupted):
                    break
    assert run.messages == [{"role": "user", "content": "go"}]
    assert len(model.requests) == 1


# --- ids ---------------------------------------------------------------------------------


async def test_an_id_a_server_reuses_in_a_later_step_gets_a_fresh_one() -> None:
    recorder = Recorder()
    model = ScriptedModel(
        [
            Reply(tool_calls=[ToolCall("act", id="call_0")]),
            Reply(tool_calls=[ToolCall("act", id="call_0")]),
            Reply(tool_calls=[ToolCall("act", id="call_0")]),
            Reply("done"),
        ]
    )
    events, run = await run_events(model, recorder.tool)

    assert recorder.calls == 3
    ids = [
        call["id"]
        for message in run.result.messages
        if message["role"] == "assistant"
        for call in message.get("tool_calls", ())
    ]
    assert ids[0] == "call_0"
    assert len(set(ids)) == 3
    answered = [m["tool_call_id"] for m in run.result.messages if m["role"] == "tool"]
    assert answered == ids
    assert [e.id for e in of(events, ToolFinished)] == ids


# --- the policy on its own -------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(ModelError("x"), True, id="no-status"),
        pytest.param(ModelError("x", status_code=429), True, id="429"),
        pytest.param(ModelError("x", status_code=502), True, id="502"),
        pytest.param(ModelError("x", status_code=400), False, id="400"),
        pytest.param(ModelError("x", status_code=500, should_retry=False), False, id="told-no"),
        pytest.param(ModelError("x", status_code=400, should_retry=True), True, id="told-yes"),
        pytest.param(StreamError("x"), True, id="stream"),
        pytest.param(RunTimeout("idle", 1), True, id="idle"),
        pytest.param(RunTimeout("step", 1), False, id="step-limit"),
        pytest.param(RunTimeout("run", 1), False, id="run-limit"),
    ],
)
def test_retryable(error: Any, expected: bool) -> None:
    assert retryable(error) is expected


def test_backoff_grows_with_jitter_up_to_its_ceiling() -> None:
    policy = Retries(max_retries=10, backoff=1, max_backoff=5)
    rng = random.Random(7)
    error = StreamError("x")
    delays = [policy.delay(error, retry, rng) for retry in range(1, 6)]
    for retry, delay in enumerate(delays, 1):
        ceiling = min(5, 2 ** (retry - 1))
        assert delay is not None
        assert ceiling / 2 <= delay <= ceiling
    assert policy.delay(error, 11, rng) is None
    assert len({policy.delay(error, 1, rng) for _ in range(20)}) > 1  # jittered


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        pytest.param({"retry-after-ms": "250"}, 0.25, id="ms"),
        pytest.param({"retry-after": "3"}, 3.0, id="seconds"),
        pytest.param({"retry-after-ms": "100", "retry-after": "9"}, 0.1, id="ms-first"),
        pytest.param({"retry-after": "soon"}, None, id="garbage"),
        pytest.param({"retry-after": "-5"}, 0.0, id="negative"),
        pytest.param({}, None, id="none"),
    ],
)
def test_retry_after_headers(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(headers) == seconds


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    seconds = retry_after({"retry-after": when})
    assert seconds is not None
    assert 25 < seconds <= 30


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"max_retries": -1}, id="negative-retries"),
        pytest.param({"budget": 1.5}, id="fractional-budget"),
        pytest.param({"backoff": float("nan")}, id="nan-backoff"),
    ],
)
def test_bad_retry_settings_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Retries"):
        Retries(**options)
