"""A run in progress: stream a step, run the tools it asks for, repeat until an answer."""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import openai
from anyio.abc import TaskGroup

from ._assemble import StreamAssembler
from ._events import (
    Event,
    MaxStepsReached,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    StepInterrupted,
    StepStarted,
    ToolCallInvalid,
    ToolCallReady,
)
from ._exceptions import (
    ErrorBudgetExceeded,
    RetriesExhausted,
    RunError,
    RunTimeout,
    ToolArgumentsError,
)
from ._execute import ToolRun, run_tools
from ._message import AssembledMessage, AssembledToolCall
from ._model import ModelStream, event_limit
from ._redact import redact, redact_error, secret_of
from ._result import RunResult, StepInfo, StopReason
from ._step import (
    call_ids,
    check_complete,
    timings,
    tool_limit,
    with_fresh_ids,
    within_limits,
)
from ._usage import Usage

if TYPE_CHECKING:
    from ._agent import Agent

__all__ = ["AgentRun"]

_CANCELLED = "cancelled: the run was stopped before this call finished"
_NOT_RUN: dict[StopReason, str] = {
    "length": "not run: the response hit the token limit before this call was complete",
    "content_filter": "not run: the server's content filter withheld the response",
    "max_steps": "not run: the run reached its step limit",
    "max_tool_calls": "not run: the run reached its limit of tool calls",
}


class AgentRun:
    """A run in progress: iterate it for events; `result` once it has finished.

    Use it as an async context manager. Leaving the block early closes the HTTP stream
    and cancels running tools; `messages` then holds the conversation up to the last
    complete step, with every tool call answered.
    """

    def __init__(
        self, agent: Agent, messages: list[dict[str, Any]], request: Mapping[str, Any]
    ) -> None:
        self._agent = agent
        self._messages = messages
        self._request = {**agent.request, **request}
        self._result: RunResult | None = None
        self._task_group: TaskGroup | None = None
        self._events: AsyncGenerator[Event, None] | None = None
        self.run_id = "run_" + secrets.token_hex(8)

    @property
    def result(self) -> RunResult:
        """The result; raises `RuntimeError` until the run has finished."""
        if self._result is None:
            raise RuntimeError("the run has not finished")
        return self._result

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation so far (a copy), consistent at every moment."""
        return [dict(message) for message in self._messages]

    async def __aenter__(self) -> AgentRun:
        if self._task_group is not None:
            raise RuntimeError("a run can be entered only once")
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._events = self._run()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._task_group is not None
        try:
            if self._events is not None:
                await self._events.aclose()
        finally:
            # The tools still running are cancelled; the block's own exception is not
            # handed to the task group, so it reaches the caller as it is rather than
            # wrapped in an exception group. A finished run has no tool left running
            # (each batch is awaited to its end), and cancelling costs a task's repr.
            if self._result is None:
                self._task_group.cancel_scope.cancel()
            await self._task_group.__aexit__(None, None, None)
        return None

    def __aiter__(self) -> AsyncIterator[Event]:
        # The events themselves: `async for` then skips a coroutine through `__anext__`
        # for every event, which costs a third as much as merging a chunk.
        if self._events is None:
            raise RuntimeError("use the run inside `async with agent.stream(...) as run:`")
        return self._events

    async def __anext__(self) -> Event:
        if self._events is None:
            raise RuntimeError("use the run inside `async with agent.stream(...) as run:`")
        return await self._events.__anext__()

    async def _run(self) -> AsyncGenerator[Event, None]:
        agent = self._agent
        started = perf_counter()
        given = agent._client
        client = given if isinstance(given, openai.AsyncOpenAI) else given()
        try:
            yield RunStarted(self.run_id, agent.model, tuple(agent.tools))
            secret = secret_of(client.api_key)
            async with aclosing(self._steps(client, started, secret)) as steps:
                async for event in steps:
                    yield event
        except Exception as exc:
            yield RunFailed(exc)
            raise
        finally:
            if client is not given:
                with anyio.CancelScope(shield=True):
                    await client.close()

    async def _steps(
        self, client: openai.AsyncOpenAI, started: float, secret: str | None
    ) -> AsyncGenerator[Event, None]:
        agent = self._agent
        usage = Usage()
        steps: list[StepInfo] = []
        first_new = len(self._messages)
        invalid_calls = 0
        calls_run = 0
        retries = agent.retries
        retries_left = math.inf if retries.budget is None else retries.budget
        rng: random.Random | None = None  # made at the first retry: seeding costs
        used_ids = call_ids(self._messages)
        step = 0
        final_only: StopReason | None = None  # why the next request offers no tools
        limits = agent.timeouts
        run_deadline = started + limits.run if limits.run else math.inf
        while True:
            step += 1
            if final_only is None and step > agent.max_steps:
                final_only = "max_steps"
            failures: list[RunError] = []
            while True:  # attempts at this step
                if limits.run and perf_counter() >= run_deadline:
                    raise RunTimeout("run", limits.run)
                yield StepStarted(step, len(failures) + 1)
                sent = perf_counter()
                first_token: float | None = None
                assembler = StreamAssembler(
                    step=step,
                    partial_arguments=agent.partial_arguments,
                    max_argument_size=agent.max_argument_size,
                )
                # The run retries failed steps itself (honouring Retry-After, and also
                # after partial output); the client retrying the same requests too would
                # multiply the attempts.
                stream = ModelStream(
                    client,
                    self._params(final_only is not None),
                    client_retries=not retries.enabled,
                    request_id=f"{self.run_id}-{step}-{len(failures) + 1}",
                    max_event_size=event_limit(agent.max_argument_size),
                )
                source = stream.chunks()
                if limits.bounds_streams:
                    step_deadline = sent + limits.step if limits.step else math.inf
                    source = within_limits(source, limits, step_deadline, run_deadline)
                try:
                    async with aclosing(source) as chunks:
                        async for chunk in chunks:
                            if secret is not None and "error" in chunk:
                                chunk = redact(chunk, secret)
                            events = assembler.feed(chunk)
                            if events:
                                if first_token is None:
                                    first_token = perf_counter()
                                for stream_event in events:
                                    yield stream_event
                    check_complete(assembler, stream)
                except RunError as exc:
                    # Nothing of a broken attempt is kept or run: the step starts over
                    # from the last consistent conversation, or the run fails.
                    if secret is not None:
                        redact_error(exc, secret)
                    failures.append(exc)
                    rng = rng or random.Random()
                    delay = retries.delay(exc, len(failures), rng) if retries_left else None
                    if delay is not None and perf_counter() + delay >= run_deadline:
                        delay = None
                    partial = assembler.finish().message
                    yield StepInterrupted(
                        step,
                        len(failures),
                        exc,
                        partial.content or "",
                        partial.reasoning or "",
                        tuple(call.index for call in partial.tool_calls),
                        delay,
                    )
                    if delay is None:
                        if len(failures) > 1:
                            raise RetriesExhausted(tuple(failures)) from exc
                        raise
                    retries_left -= 1
                    await anyio.sleep(delay)
                else:
                    break
            finished = perf_counter()
            response = assembler.finish()
            message = with_fresh_ids(response.message, used_ids)
            calls = message.tool_calls
            reason = response.finish_reason
            stop: StopReason | None = None
            outputs: dict[int, str] = {}
            runnable: list[ToolRun] = []
            not_run: StopReason | None = (
                "length" if reason == "length"
                else "content_filter" if reason == "content_filter"
                else final_only
            )  # fmt: skip
            for call in calls:
                if not_run is not None:
                    error = _NOT_RUN[not_run]
                else:
                    ready, error = self._validate(call)
                    if ready is None:
                        invalid_calls += 1
                    else:
                        error = self._over_limit(len(runnable), calls_run)
                        if not error:
                            runnable.append(ready)
                            yield ToolCallReady(
                                step, call.index, call.id, ready.tool.name, ready.arguments,
                                call.arguments,
                            )  # fmt: skip
                            continue
                        if error == _NOT_RUN["max_tool_calls"] and final_only is None:
                            final_only = "max_tool_calls"
                outputs[call.index] = f"Invalid tool call: {error}"
                yield ToolCallInvalid(step, call.index, call.id, call.name, call.arguments, error)

            assistant = self._assistant_message(message)
            tool_started = perf_counter()
            if runnable:
                calls_run += len(runnable)
                context = (*self._messages, assistant)
                assert self._task_group is not None
                seconds = tool_limit(limits, run_deadline)
                batch = run_tools(
                    self._task_group, runnable, self.run_id, step, context, seconds,
                    agent.max_result_size,
                )  # fmt: skip
                try:
                    async with aclosing(batch) as tool_events:
                        async for tool_event in tool_events:
                            yield tool_event
                finally:
                    # Also when the run is left or cancelled mid-way: every call gets an
                    # answer, so the conversation stays consistent and can be continued.
                    outputs.update(
                        (call.index, call.output if call.finished else _CANCELLED)
                        for call in runnable
                    )
                    if not all(call.finished for call in runnable):
                        self._add_step(assistant, calls, outputs)
            tool_time = perf_counter() - tool_started if runnable else 0.0

            self._add_step(assistant, calls, outputs)
            step_usage = response.usage_summary
            if step_usage is not None:
                usage += step_usage
            ttft, duration, rate = timings(sent, first_token, finished, step_usage)
            steps.append(
                StepInfo(
                    step, reason, step_usage, ttft, duration, rate, len(calls), tool_time,
                    len(failures) + 1,
                )
            )  # fmt: skip
            yield StepFinished(step, reason, assistant, step_usage, ttft, duration, rate)

            if invalid_calls > agent.max_invalid_calls:
                raise ErrorBudgetExceeded(
                    f"the model made {invalid_calls} invalid tool calls in this run "
                    f"(the budget is {agent.max_invalid_calls})"
                )
            if not_run is not None:
                stop = not_run
            elif not calls:
                stop = _answer_reason(message, reason)
            elif final_only == "max_tool_calls" and not agent.final_answer:
                stop = "max_tool_calls"
            elif step >= agent.max_steps:
                yield MaxStepsReached(step, agent.max_steps)
                if not agent.final_answer:
                    stop = "max_steps"
            if stop is not None:
                break

        self._result = RunResult(
            run_id=self.run_id,
            output=message.content or "",
            messages=tuple(self._messages),
            new_messages=tuple(self._messages[first_new:]),
            stop_reason=stop,
            usage=usage,
            steps=tuple(steps),
            duration=perf_counter() - started,
            refusal=message.refusal,
        )
        yield RunFinished(self._result)

    def _over_limit(self, in_step: int, in_run: int) -> str:
        """Why one more call cannot run after `in_step` in this step, `in_run` before it."""
        agent = self._agent
        per_step = agent.max_tool_calls_per_step
        if per_step is not None and in_step >= per_step:
            return f"not run: at most {per_step} tool calls run in one step"
        if agent.max_tool_calls is not None and in_run + in_step >= agent.max_tool_calls:
            return _NOT_RUN["max_tool_calls"]
        return ""

    def _add_step(
        self,
        assistant: dict[str, Any],
        calls: Sequence[AssembledToolCall],
        outputs: Mapping[int, str],
    ) -> None:
        """Append the assistant message and one tool message per call, in call order."""
        self._messages.append(assistant)
        self._messages.extend(
            {"role": "tool", "tool_call_id": call.id, "content": outputs[call.index]}
            for call in calls
        )

    def _params(self, extra_step: bool) -> dict[str, Any]:
        agent = self._agent
        params: dict[str, Any] = {
            "stream_options": {"include_usage": True},
            **self._request,
            "model": agent.model,
            "messages": self._messages,
            "stream": True,
        }
        if agent.tools:
            params["tools"] = agent._tool_definitions()
            if extra_step:
                params["tool_choice"] = "none"
        return params

    def _validate(self, call: AssembledToolCall) -> tuple[ToolRun | None, str]:
        tools = self._agent.tools
        if call.oversized is not None:
            return None, (
                f"the arguments were {call.oversized} characters long; at most "
                f"{self._agent.max_argument_size} are accepted"
            )
        if not call.name:
            return None, "the call has no function name"
        tool = tools.get(call.name)
        if tool is None:
            available = ", ".join(tools) or "none"
            return None, f"unknown tool {call.name!r}; the available tools are: {available}"
        try:
            arguments = tool.validate(call.arguments)
        except ToolArgumentsError as exc:
            return None, f"{call.name}: {exc.message}"
        return ToolRun(call.index, call.id, tool, arguments), ""

    @staticmethod
    def _assistant_message(assembled: AssembledMessage) -> dict[str, Any]:
        message = assembled.to_dict()
        for call in message.get("tool_calls", ()):
            if call["function"]["name"] is None:
                call["function"]["name"] = ""  # servers reject a null name in requests
        return message


def _answer_reason(message: AssembledMessage, finish_reason: str | None) -> StopReason:
    if message.refusal:
        return "refusal"
    if finish_reason in ("length", "content_filter"):
        return finish_reason  # type: ignore[return-value]
    return "answer"
