"""A run in progress: stream a step, run the tools it asks for, repeat until an answer."""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import aclosing
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import openai
from anyio.abc import TaskGroup

from ._assemble import StreamAssembler
from ._calls import NOT_RUN, answer_reason, assistant_message, over_limit, validate_call
from ._early import EarlyStarts
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
from ._exceptions import ErrorBudgetExceeded, RetriesExhausted, RunError, RunTimeout
from ._execute import ToolRunner, run_tools
from ._model import ModelStream
from ._redact import redact, redact_error, secret_of
from ._result import RunResult, StepInfo, StopReason
from ._state import RunState, StepState
from ._step import check_complete, timings, tool_limit, with_fresh_ids, within_limits

if TYPE_CHECKING:
    from ._agent import Agent

__all__ = ["AgentRun"]

_CANCELLED = "cancelled: the run was stopped before this call finished"


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
        self._request = {**agent.request, **request}
        self._result: RunResult | None = None
        self._task_group: TaskGroup | None = None
        self._events: AsyncGenerator[Event, None] | None = None
        self._secret: str | None = None
        self._rng: random.Random | None = None  # made at the first retry: seeding costs
        self._runner: ToolRunner | None = None  # the last relay of early calls
        self.run_id = "run_" + secrets.token_hex(8)
        self._state = RunState.start(self.run_id, messages, agent.retries.budget)

    @property
    def result(self) -> RunResult:
        """The result; raises `RuntimeError` until the run has finished."""
        if self._result is None:
            raise RuntimeError("the run has not finished")
        return self._result

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation so far (a copy), consistent at every moment."""
        return [dict(message) for message in self._state.messages]

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
            self._secret = secret = secret_of(client.api_key)
            async with aclosing(self._steps(client, started, secret)) as steps:
                async for event in steps:
                    yield event
        except Exception as exc:
            yield RunFailed(exc)
            raise
        finally:
            if self._runner is not None:
                self._runner.close()  # the early calls' relay, if the run is left mid-step
            if client is not given:
                with anyio.CancelScope(shield=True):
                    await client.close()

    async def _steps(
        self, client: openai.AsyncOpenAI, started: float, secret: str | None
    ) -> AsyncGenerator[Event, None]:
        """Step after step until the model answers or a limit ends the run.

        A step: request until a whole response arrives (retrying broken attempts),
        decide the fate of each call, run the runnable ones, record the step. The
        chunk loop stays inline here: every generator between the socket and the
        consumer costs a hop per event, as much as a third of merging a chunk.
        """
        state = self._state
        limits = self._agent.timeouts
        run_deadline = started + limits.run if limits.run else math.inf
        while True:
            step = self._begin_step()
            while True:  # attempts at this step
                if limits.run and perf_counter() >= run_deadline:
                    raise RunTimeout("run", limits.run)
                yield StepStarted(step.number, step.attempt)
                assembler, stream, source = self._send(step, client, run_deadline)
                early = step.early
                try:
                    async with aclosing(source) as chunks:
                        if early is None:
                            async for chunk in chunks:
                                if secret is not None and "error" in chunk:
                                    chunk = redact(chunk, secret)
                                events = assembler.feed(chunk)
                                if events:
                                    if step.first_token is None:
                                        step.first_token = perf_counter()
                                    for stream_event in events:
                                        yield stream_event
                        else:  # the same, and start each call that has become final
                            async for chunk in chunks:
                                if secret is not None and "error" in chunk:
                                    chunk = redact(chunk, secret)
                                events = assembler.feed(chunk)
                                if events and step.first_token is None:
                                    step.first_token = perf_counter()
                                # Tools start before the consumer sees this chunk.
                                also = early.after_chunk(assembler)
                                for stream_event in events:
                                    yield stream_event
                                for event in also:
                                    yield event
                    check_complete(assembler, stream)
                except RunError as exc:
                    if early is not None:
                        for event in early.abandon(f"the attempt at this step failed: {exc}"):
                            yield event
                    delay, interrupted = self._attempt_failed(step, assembler, exc, run_deadline)
                    yield interrupted
                    if delay is None:
                        if len(step.failures) > 1:
                            raise RetriesExhausted(tuple(step.failures)) from exc
                        raise
                    state.retries_left -= 1
                    await anyio.sleep(delay)
                else:
                    break
            self._take_response(step, assembler)
            for event in self._sort_calls(step):
                yield event
            if step.runnable:
                async with aclosing(self._run_calls(step, run_deadline)) as tool_events:
                    async for event in tool_events:
                        yield event
            yield self._end_step(step)
            stop, at_step_limit = self._stop_after(step)
            if at_step_limit:
                yield MaxStepsReached(step.number, self._agent.max_steps)
            if stop is not None:
                break
        yield RunFinished(self._finish(step, stop, started))

    def _begin_step(self) -> StepState:
        """The next step; past the step limit it may only answer (no tools offered)."""
        state = self._state
        state.step += 1
        if state.final_only is None and state.step > self._agent.max_steps:
            state.final_only = "max_steps"
        return StepState(state.step)

    def _send(
        self, step: StepState, client: openai.AsyncOpenAI, run_deadline: float
    ) -> tuple[StreamAssembler, ModelStream, AsyncGenerator[dict[str, Any], None]]:
        """Send one attempt at `step`: its assembler, its stream, and the chunks to read."""
        agent = self._agent
        limits = agent.timeouts
        step.sent = perf_counter()
        step.first_token = None
        assembler = StreamAssembler(
            step=step.number,
            partial_arguments=agent.partial_arguments,
            max_argument_size=agent.max_argument_size,
        )
        # The run retries failed steps itself (honouring Retry-After, and also after
        # partial output); the client retrying the same requests too would multiply
        # the attempts.
        stream = ModelStream(
            client,
            self._params(self._state.final_only is not None),
            client_retries=not agent.retries.enabled,
            request_id=f"{self.run_id}-{step.number}-{step.attempt}",
        )
        source = stream.chunks()
        if agent.early_tools:
            step.early = self._early_starts(step, run_deadline)
        if limits.bounds_streams:
            step_deadline = step.sent + limits.step if limits.step else math.inf
            source = within_limits(source, limits, step_deadline, run_deadline)
        return assembler, stream, source

    def _early_starts(self, step: StepState, run_deadline: float) -> EarlyStarts | None:
        """What starts the calls of this attempt early, if any tool may start early."""
        agent = self._agent
        if not any(tool.early for tool in agent.tools.values()):
            return None
        assert self._task_group is not None
        runner = ToolRunner(self._task_group, self.run_id, step.number, agent.max_result_size)
        self._runner = runner
        timeout = tool_limit(agent.timeouts, run_deadline)
        return EarlyStarts(agent, self._state, step.number, runner, timeout, step.reusable)

    def _attempt_failed(
        self, step: StepState, assembler: StreamAssembler, exc: RunError, run_deadline: float
    ) -> tuple[float | None, StepInterrupted]:
        """Record a broken attempt: the wait before the next one (`None`: give up).

        Nothing of a broken attempt is kept or run: the step starts over from the last
        consistent conversation, or the run fails.
        """
        if self._secret is not None:
            redact_error(exc, self._secret)
        step.failures.append(exc)
        self._rng = self._rng or random.Random()
        retries = self._agent.retries
        left = self._state.retries_left
        delay = retries.delay(exc, len(step.failures), self._rng) if left else None
        if delay is not None and perf_counter() + delay >= run_deadline:
            delay = None
        partial = assembler.finish().message
        interrupted = StepInterrupted(
            step.number,
            len(step.failures),
            exc,
            partial.content or "",
            partial.reasoning or "",
            tuple(call.index for call in partial.tool_calls),
            delay,
        )
        return delay, interrupted

    def _take_response(self, step: StepState, assembler: StreamAssembler) -> None:
        """Keep the whole response, its call ids made unique in the conversation."""
        step.finished = perf_counter()
        step.response = response = assembler.finish()
        if step.early is not None:
            step.message = step.early.with_ids(response.message, self._state.used_ids)
        else:
            step.message = with_fresh_ids(response.message, self._state.used_ids)
        reason = response.finish_reason
        step.not_run = (
            "length" if reason == "length"
            else "content_filter" if reason == "content_filter"
            else self._state.final_only
        )  # fmt: skip

    def _sort_calls(self, step: StepState) -> Iterator[Event]:
        """Validate each call and check the limits: ready to run, or refused and why."""
        state = self._state
        agent = self._agent
        assert step.message is not None
        for call in step.message.tool_calls:
            if step.not_run is not None:
                error = NOT_RUN[step.not_run]
            else:
                ready, error = validate_call(agent, call)
                if ready is None:
                    state.invalid_calls += 1
                else:
                    error = over_limit(agent, len(step.runnable), state.calls_run)
                    if not error and step.early is not None:
                        ready, withdrawn = step.early.claim(call, ready)
                        yield from withdrawn
                        if ready.early:  # started early: its ToolCallReady has been sent
                            step.runnable.append(ready)
                            continue
                    if not error:
                        step.runnable.append(ready)
                        yield ToolCallReady(
                            step.number, call.index, call.id, ready.tool.name, ready.arguments,
                            call.arguments,
                        )  # fmt: skip
                        continue
                    if error == NOT_RUN["max_tool_calls"] and state.final_only is None:
                        state.final_only = "max_tool_calls"
            step.outputs[call.index] = f"Invalid tool call: {error}"
            yield ToolCallInvalid(
                step.number, call.index, call.id, call.name, call.arguments, error
            )
        if step.early is not None:
            reason = NOT_RUN[step.not_run] if step.not_run else "the whole response did not keep it"
            yield from step.early.unclaimed(reason)
            if not step.runnable:
                step.early.runner.close()  # else `_run_calls` closes it
        step.assistant = assistant_message(step.message)

    async def _run_calls(self, step: StepState, run_deadline: float) -> AsyncGenerator[Event, None]:
        """Run the step's runnable calls, relaying their events; every call gets an answer."""
        state = self._state
        agent = self._agent
        assert step.message is not None
        assert self._task_group is not None
        started = perf_counter()
        runnable = step.runnable
        state.calls_run += len(runnable)
        context = (*state.messages, step.assistant)
        timeout = tool_limit(agent.timeouts, run_deadline)
        batch = (
            step.early.run(runnable, context, timeout)
            if step.early is not None
            else run_tools(
                self._task_group, runnable, self.run_id, step.number, context, timeout,
                agent.max_result_size,
            )
        )  # fmt: skip
        try:
            async with aclosing(batch) as tool_events:
                async for tool_event in tool_events:
                    yield tool_event
        finally:
            # Also when the run is left or cancelled mid-way: every call gets an answer,
            # so the conversation stays consistent and can be continued.
            step.outputs.update(
                (call.index, call.output if call.finished else _CANCELLED) for call in runnable
            )
            if not all(call.finished for call in runnable):
                self._add_step(step)
        step.tool_time = perf_counter() - started

    def _end_step(self, step: StepState) -> StepFinished:
        """Add the step to the conversation and the run's totals."""
        state = self._state
        assert step.response is not None
        assert step.message is not None
        self._add_step(step)
        step_usage = step.response.usage_summary
        if step_usage is not None:
            state.usage += step_usage
        ttft, duration, rate = timings(step.sent, step.first_token, step.finished, step_usage)
        reason = step.response.finish_reason
        state.steps.append(
            StepInfo(
                step.number, reason, step_usage, ttft, duration, rate,
                len(step.message.tool_calls), step.tool_time, step.attempt,
            )
        )  # fmt: skip
        return StepFinished(step.number, reason, step.assistant, step_usage, ttft, duration, rate)

    def _stop_after(self, step: StepState) -> tuple[StopReason | None, bool]:
        """Why the run ends after `step` (`None`: it goes on); whether it hit the step limit.

        Raises `ErrorBudgetExceeded` once the model has made too many invalid calls.
        """
        state = self._state
        agent = self._agent
        assert step.message is not None
        assert step.response is not None
        if state.invalid_calls > agent.max_invalid_calls:
            raise ErrorBudgetExceeded(
                f"the model made {state.invalid_calls} invalid tool calls in this run "
                f"(the budget is {agent.max_invalid_calls})"
            )
        if step.not_run is not None:
            return step.not_run, False
        if not step.message.tool_calls:
            return answer_reason(step.message, step.response.finish_reason), False
        if state.final_only == "max_tool_calls" and not agent.final_answer:
            return "max_tool_calls", False
        if step.number >= agent.max_steps:
            return (None if agent.final_answer else "max_steps"), True
        return None, False

    def _finish(self, step: StepState, stop: StopReason, started: float) -> RunResult:
        state = self._state
        assert step.message is not None
        self._result = RunResult(
            run_id=self.run_id,
            output=step.message.content or "",
            messages=tuple(state.messages),
            new_messages=tuple(state.messages[state.first_new :]),
            stop_reason=stop,
            usage=state.usage,
            steps=tuple(state.steps),
            duration=perf_counter() - started,
            refusal=step.message.refusal,
        )
        return self._result

    def _add_step(self, step: StepState) -> None:
        """Append the assistant message and one tool message per call, in call order."""
        assert step.message is not None
        messages = self._state.messages
        messages.append(step.assistant)
        messages.extend(
            {"role": "tool", "tool_call_id": call.id, "content": step.outputs[call.index]}
            for call in step.message.tool_calls
        )

    def _params(self, extra_step: bool) -> dict[str, Any]:
        agent = self._agent
        params: dict[str, Any] = {
            "stream_options": {"include_usage": True},
            **self._request,
            "model": agent.model,
            "messages": self._state.messages,
            "stream": True,
        }
        if agent.tools:
            params["tools"] = agent._tool_definitions()
            if extra_step:
                params["tool_choice"] = "none"
        return params
