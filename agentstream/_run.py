"""A run in progress: stream a step, run the tools it asks for, repeat until an answer."""

from __future__ import annotations

import contextlib
import math
import random
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import aclosing
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic

import anyio
import openai
from anyio.abc import TaskGroup

from ._approval import check_decisions, decide
from ._assemble import StreamAssembler
from ._calls import (
    assistant_message,
    awaiting,
    resumed_step,
    sort_calls,
    stop_after,
)
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
    ToolFinished,
    ToolStarted,
)
from ._exceptions import RetriesExhausted, RunError, RunTimeout, SetupError
from ._execute import ToolRun, ToolRunner, run_tools
from ._observe import RunObserver, observed
from ._partial import OutputWatch
from ._redact import redact, redact_error, secret_of
from ._responses import ResponsesAssembler
from ._responses_output import AssembledResponsesOutput
from ._responses_request import CARRIED, carried
from ._result import OutputT, RunResult, StopReason
from ._send import Attempt, open_attempt
from ._state import RunState, StepState
from ._step import attempt_failed, check_complete, tool_limit, with_fresh_ids
from ._store import state_of_session
from ._typed import TypedRun

if TYPE_CHECKING:
    from ._agent import Agent, RunStart

__all__ = ["AgentRun"]

_CANCELLED = "cancelled: the run was stopped before this call finished"

# The block owns the run: leaving it closes the HTTP stream and cancels running tools.
_USE_ASYNC_WITH = (
    "iterate a run inside its block: `async with agent.stream(prompt) as run:` then "
    "`async for event in run: ...` (or `result = await agent.run(prompt)` for the result)"
)


class AgentRun(Generic[OutputT]):
    """A run in progress: iterate it for events; `result` once it has finished.

    Use it as an async context manager. Leaving the block early closes the HTTP stream
    and cancels running tools; `messages` then holds the conversation up to the last
    complete step, with every tool call answered.
    """

    def __init__(
        self,
        agent: Agent[Any],
        start: RunStart,
        request: Mapping[str, Any],
        typed: TypedRun | None = None,
    ) -> None:
        self._agent = agent
        self._request = {**agent.request, **request}
        self._typed = typed
        self._result: RunResult[OutputT] | None = None
        self._task_group: TaskGroup | None = None
        self._events: AsyncGenerator[Event, None] | None = None
        self._secret: str | None = None
        self._rng: random.Random | None = None  # made at the first retry: seeding costs
        self._watchers: tuple[RunObserver, ...] = ()  # the agent's observers of this run
        self._runner: ToolRunner | None = None  # the last relay of early calls
        self._start = start
        self._approver = start.approver if start.approver is not None else agent.approver
        self._session = start.session
        self._claim: str | None = None  # what names this run in its session while it holds it
        if start.state is not None:
            self._state = start.state
            self._state.first_new = len(self._state.messages)
        else:
            self._state = RunState.start("run_" + secrets.token_hex(8), start.messages)
        self.run_id = self._state.run_id

    @property
    def state(self) -> RunState:
        """Where the run stands: its conversation, counters and any step in progress."""
        return self._state

    @property
    def result(self) -> RunResult[OutputT]:
        """The result; raises `RuntimeError` until the run has finished."""
        if self._result is None:
            raise RuntimeError("the run has not finished")
        return self._result

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation so far (a copy), consistent at every moment."""
        return [dict(message) for message in self._state.messages]

    async def __aenter__(self) -> AgentRun[OutputT]:
        if self._task_group is not None:
            raise RuntimeError("a run can be entered only once")
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._events = self._run()
        if self._agent.observers:
            self._watch()
        return self

    def _watch(self) -> None:
        """Let the agent's observers watch this run: its events and its tool calls."""
        watchers = (observer.observe(self) for observer in self._agent.observers)
        self._watchers = tuple(watcher for watcher in watchers if watcher is not None)
        if self._watchers:
            assert self._events is not None
            self._events = observed(self._events, self._watchers)

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
            try:
                await self._task_group.__aexit__(None, None, None)
            finally:
                for watcher in self._watchers:
                    watcher.end(exc)
        return None

    def __aiter__(self) -> AsyncIterator[Event]:
        # The events themselves: `async for` then skips a coroutine through `__anext__`
        # for every event, which costs a third as much as merging a chunk.
        if self._events is None:
            raise SetupError(_USE_ASYNC_WITH)
        return self._events

    async def __anext__(self) -> Event:
        if self._events is None:
            raise SetupError(_USE_ASYNC_WITH)
        return await self._events.__anext__()

    async def _run(self) -> AsyncGenerator[Event, None]:
        agent = self._agent
        started = perf_counter()
        given = agent._client
        client = given if isinstance(given, openai.AsyncOpenAI) else given()
        try:
            if self._session is not None:
                await self._load_session()
            yield RunStarted(self.run_id, agent.model, tuple(agent.tools))
            self._secret = secret = secret_of(client.api_key)
            async with aclosing(self._steps(client, started, secret)) as steps:
                async for event in steps:
                    yield event
        except Exception as exc:
            yield RunFailed(exc)
            raise
        finally:
            if self._claim is not None and self._result is None:
                with anyio.CancelScope(shield=True):  # failed or left: free the session
                    await self._release()
            if self._runner is not None:
                self._runner.close()  # the early calls' relay, if the run is left mid-step
            if client is not given:
                with anyio.CancelScope(shield=True):
                    await client.close()

    async def _load_session(self) -> None:
        """Take up the session's conversation (or its unfinished run, to resume it)."""
        assert self._session is not None
        start = self._start
        claim = f"{self.run_id}/{secrets.token_hex(6)}"
        self._state = await state_of_session(
            self._session, self._state, resume=start.resume, added=start.added, claim=claim
        )
        self._claim = claim if start.resume else None
        self.run_id = self._state.run_id

    async def _release(self) -> None:
        assert self._session is not None
        with contextlib.suppress(Exception):  # the run's own error is what the caller sees
            await self._session.release(self._claim)

    async def _checkpoint(self) -> None:
        if self._session is not None:
            state = self._state
            held = self._claim if state.stop_reason is None else None
            await self._session.save(state, claim=held)

    async def _steps(
        self, client: openai.AsyncOpenAI, started: float, secret: str | None
    ) -> AsyncGenerator[Event, None]:
        """Step after step until the model answers, a limit ends the run, or it pauses.

        A step: request until a whole response arrives (retrying broken attempts),
        decide the fate of each call (approvals included), run the runnable ones,
        record the step. A step saved with calls pending is taken up where it stopped.
        The chunk loop stays inline here: every generator between the socket and the
        consumer costs a hop per event, as much as a third of merging a chunk.
        """
        state = self._state
        limits = self._agent.timeouts
        typed = self._typed
        run_deadline = started + limits.run if limits.run else math.inf
        while True:
            step = self._begin_step()
            if not step.resumed:
                while True:  # attempts at this step
                    if limits.run and perf_counter() >= run_deadline:
                        raise RunTimeout("run", limits.run)
                    yield StepStarted(step.number, step.attempt)
                    assembler, stream, source = self._send(step, client, run_deadline)
                    watch = typed.watch(step.number) if typed is not None else None
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
                                        if watch is not None:
                                            for output_event in watch.feed(events):
                                                yield output_event
                            else:  # the same, and start each call that has become final
                                starting = self._early_chunks(
                                    chunks, assembler, step, early, watch, secret
                                )
                                async with aclosing(starting) as early_events:
                                    async for event in early_events:
                                        yield event
                        check_complete(assembler, stream)
                    except RunError as exc:
                        if early is not None:
                            if secret is not None:
                                redact_error(exc, secret)  # before its text is copied
                            for event in early.abandon(f"the attempt at this step failed: {exc}"):
                                yield event
                        if typed is not None and typed.fall_back(exc):
                            continue  # refused `response_format`: ask again, by the final tool
                        delay, interrupted = self._attempt_failed(
                            step, assembler, exc, run_deadline
                        )
                        yield interrupted
                        if delay is None:
                            if len(step.failures) > 1:
                                raise RetriesExhausted(tuple(step.failures)) from exc
                            raise
                        state.retries_used += 1
                        await anyio.sleep(delay)
                    else:
                        break
                self._take_response(step, assembler)
                if typed is not None:
                    for event in self._typed_calls(step, watch):
                        yield event
                if step.early is not None or (step.message and step.message.tool_calls):
                    async with aclosing(self._sort_calls(step)) as sorting:
                        async for event in sorting:
                            yield event
            async with aclosing(self._settle(step, run_deadline)) as settling:
                async for event in settling:
                    yield event
            if step.stop is not None:
                break
            if self._session is not None:
                await self._checkpoint()
        yield RunFinished(await self._finish(step, step.stop, started))

    async def _early_chunks(
        self,
        chunks: AsyncGenerator[dict[str, Any], None],
        assembler: StreamAssembler | ResponsesAssembler,
        step: StepState,
        early: EarlyStarts,
        watch: OutputWatch | None,
        secret: str | None,
    ) -> AsyncGenerator[Event, None]:
        """The chunk loop of a step that may start tools early (one hop more per event,
        paid only by agents that opted in): each call that has become final starts
        before the consumer sees the chunk that made it so."""
        async for chunk in chunks:
            if secret is not None and "error" in chunk:
                chunk = redact(chunk, secret)
            events = assembler.feed(chunk)
            if events and step.first_token is None:
                step.first_token = perf_counter()
            also = early.after_chunk(assembler)
            for stream_event in events:
                yield stream_event
            if watch is not None and events:
                for output_event in watch.feed(events):
                    yield output_event
            for event in also:
                yield event

    async def _settle(self, step: StepState, run_deadline: float) -> AsyncGenerator[Event, None]:
        """After a whole response: decisions, the tools, the step's record; `step.stop`
        says why the run ends here (`approval_required` while calls wait), or None."""
        if step.resumed is not None or any(c.status == "awaiting_approval" for c in step.calls):
            async for event in self._decide(step):
                yield event
        elif step.calls and self._session is not None:
            await self._checkpoint()  # as `_decide` does, which has nothing to decide here
        if step.runnable:
            async with aclosing(self._run_calls(step, run_deadline)) as tool_events:
                async for event in tool_events:
                    yield event
        elif step.early is not None:
            step.early.runner.close()  # else `_run_calls` closes it
        if any(call.status == "awaiting_approval" for call in step.calls):
            step.stop = "approval_required"
            return
        if self._typed is not None:
            for event in self._typed_answer(step):
                yield event
        yield self._end_step(step)
        if self._typed is not None:
            self._typed.add_feedback(self._state)
        step.stop, at_step_limit = self._stop_after(step)
        if at_step_limit:
            yield MaxStepsReached(step.number, self._agent.max_steps)

    def _begin_step(self) -> StepState:
        """The next step, or the saved step whose calls are not all answered yet.

        Past the step limit a step may only answer (no tools offered).
        """
        state = self._state
        if state.pending is not None:
            return resumed_step(state.pending, self._agent)
        state.step += 1
        if state.final_only is None and state.step > self._agent.max_steps:
            state.final_only = "max_steps"
        return StepState(state.step)

    def _send(self, step: StepState, client: openai.AsyncOpenAI, run_deadline: float) -> Attempt:
        """Send one attempt at `step` (see `open_attempt`); ready its early starts."""
        attempt = open_attempt(
            self._agent, self._state, step, client, self._request, self.run_id, run_deadline,
            self._typed,
        )  # fmt: skip
        if self._agent.early_tools:
            step.early = self._early_starts(step, run_deadline)
        return attempt

    def _early_starts(self, step: StepState, run_deadline: float) -> EarlyStarts | None:
        """What starts the calls of this attempt early, if any tool may start early."""
        agent = self._agent
        if not any(tool.early for tool in agent.tools.values()):
            return None
        assert self._task_group is not None
        runner = ToolRunner(
            self._task_group, self.run_id, step.number, agent.max_result_size, self._watchers,
            self._start.deps,
        )  # fmt: skip
        self._runner = runner
        timeout = tool_limit(agent.timeouts, run_deadline)
        return EarlyStarts(agent, self._state, step.number, runner, timeout, step.reusable)

    def _attempt_failed(
        self,
        step: StepState,
        assembler: StreamAssembler | ResponsesAssembler,
        exc: RunError,
        run_deadline: float,
    ) -> tuple[float | None, StepInterrupted]:
        """Record a broken attempt (see `attempt_failed`)."""
        self._rng = self._rng or random.Random()  # made at the first retry: seeding costs
        retries = self._agent.retries
        left = self._state.retries_left(retries.budget)
        return attempt_failed(
            step, assembler, exc, retries, left, self._rng, run_deadline, self._secret
        )

    def _take_response(
        self, step: StepState, assembler: StreamAssembler | ResponsesAssembler
    ) -> None:
        """Keep the whole response, its call ids made unique in the conversation."""
        step.finished = perf_counter()
        step.response = response = assembler.finish()
        if step.early is not None:
            step.message = step.early.with_ids(response.message, self._state.used_ids)
        else:
            step.message = with_fresh_ids(response.message, self._state.used_ids)
        step.finish_reason = reason = response.finish_reason
        step.response_id, step.response_model = response.id, response.model
        step.usage = response.usage_summary
        if step.usage is not None:
            self._state.usage += step.usage
        step.not_run = (
            "length" if reason == "length"
            else "content_filter" if reason == "content_filter"
            else self._state.final_only
        )  # fmt: skip
        step.assistant = assistant_message(step.message)
        if isinstance(response, AssembledResponsesOutput):
            self._take_responses_output(step, response)

    def _take_responses_output(self, step: StepState, output: AssembledResponsesOutput) -> None:
        """What the Responses API adds: calls cut short never run (as after `length`), and
        what the next request needs rides on the assistant message (`CARRIED`)."""
        if output.cut_calls and step.not_run is None:
            step.not_run = "length"
        assert step.message is not None
        extra = carried(output, step.message)
        if extra:
            step.assistant[CARRIED] = extra

    def _sort_calls(self, step: StepState) -> AsyncGenerator[Event, None]:
        """Validate each call and check the limits: ready, awaiting approval, or refused."""
        answered = self._typed.answered if self._typed is not None else {}
        return sort_calls(self._agent, self._state, step, answered, self.run_id, self._start.deps)

    async def _decide(self, step: StepState) -> AsyncGenerator[Event, None]:
        """Settle the calls awaiting approval (see `decide`); then save the step's state,
        so a crash from here on never asks the model for this response again."""
        if step.resumed is not None:  # a saved step: its ready calls must have their decisions
            context = (*self._state.messages, step.assistant)
            await check_decisions(step, self.run_id, context)
        async with aclosing(decide(step, self._start.approvals, self._approver)) as events:
            async for event in events:
                yield event
        if step.calls:
            await self._checkpoint()

    async def _run_calls(self, step: StepState, run_deadline: float) -> AsyncGenerator[Event, None]:
        """Run the step's runnable calls, relaying their events; every call gets an answer.

        With a session, the state is saved before each batch of calls starts and as each
        finishes, so after a crash a finished call is never run again and a started one
        is known to have started.
        """
        state = self._state
        agent = self._agent
        assert self._task_group is not None
        started = perf_counter()
        runnable = step.runnable
        state.calls_run += len(runnable)
        by_id = {call.id: call for call in step.calls}
        context = (*state.messages, step.assistant)
        timeout = tool_limit(agent.timeouts, run_deadline)
        starting = None if self._session is None else self._starting
        batch = (
            step.early.run(runnable, context, timeout, starting)
            if step.early is not None
            else run_tools(
                self._task_group, runnable, self.run_id, step.number, context, timeout,
                agent.max_result_size, self._watchers, starting, self._start.deps,
            )
        )  # fmt: skip
        try:
            async with aclosing(batch) as tool_events:
                async for tool_event in tool_events:
                    yield tool_event
                    if self._session is not None:
                        if isinstance(tool_event, ToolStarted):
                            if by_id[tool_event.id].status == "running":
                                continue  # saved before it started
                            by_id[tool_event.id].status = "running"  # it started early
                        elif isinstance(tool_event, ToolFinished):
                            call = by_id[tool_event.id]
                            call.status, call.output = "finished", tool_event.output
                        else:
                            continue  # progress is not worth a checkpoint
                        await self._checkpoint()
        finally:
            # Also when the run is left or cancelled mid-way: every call gets an answer,
            # so the conversation stays consistent and can be continued.
            for run in runnable:
                call = by_id[run.id]
                call.status = "finished"
                call.output = run.output if run.finished else _CANCELLED
            if not all(run.finished for run in runnable) and not any(
                call.status == "awaiting_approval" for call in step.calls
            ):
                self._add_step(step)
        step.tool_time = perf_counter() - started

    async def _starting(self, batch: list[ToolRun]) -> None:
        """Save that these calls are running before they start: after a crash, a call
        that may have had effects is never taken for one that never ran."""
        pending = self._state.pending
        assert pending is not None
        starting = {run.id for run in batch}
        for call in pending.calls:
            if call.id in starting:
                call.status = "running"
        await self._checkpoint()

    def _end_step(self, step: StepState) -> StepFinished:
        """Add the step to the conversation and the run's totals."""
        state = self._state
        self._add_step(step)
        info = step.info()
        state.steps.append(info)
        return StepFinished(
            step.number,
            step.finish_reason,
            step.assistant,
            info.usage,
            info.time_to_first_token,
            info.duration,
            info.tokens_per_second,
            step.response_id,
            step.response_model,
        )

    def _stop_after(self, step: StepState) -> tuple[StopReason | None, bool]:
        """Why the run ends after `step`, if it does (see `stop_after`)."""
        return stop_after(self._agent, self._state, step, self._typed)

    async def _finish(
        self, step: StepState, stop: StopReason, started: float
    ) -> RunResult[OutputT]:
        state = self._state
        state.stop_reason = stop
        await self._checkpoint()
        assistant = step.assistant
        paused = state.pending is not None
        typed = self._typed
        output: Any = (
            typed.value if typed is not None
            else "" if paused
            else assistant.get("content") or ""
        )  # fmt: skip
        self._result = RunResult(
            run_id=self.run_id,
            output=output,
            messages=tuple(state.messages),
            new_messages=tuple(state.messages[state.first_new :]),
            stop_reason=stop,
            usage=state.usage,
            steps=tuple(state.steps),
            duration=perf_counter() - started,
            refusal=None if paused else assistant.get("refusal"),
            state=state,
            approvals=awaiting(step, self._agent) if paused else (),
        )
        return self._result

    def _add_step(self, step: StepState) -> None:
        """Append the assistant message and one tool message per call, in call order."""
        state = self._state
        state.messages.append(step.assistant)
        state.messages.extend(
            {"role": "tool", "tool_call_id": call.id, "content": call.output or ""}
            for call in step.calls
        )
        state.pending = None

    # --- typed output (see `_typed`): phases of their own, skipped without an output type

    def _typed_calls(self, step: StepState, watch: OutputWatch | None) -> Iterator[Event]:
        """The last partial value of the answer; in the tool mode, the final-answer call."""
        typed = self._typed
        if typed is None or watch is None:
            return
        yield from watch.finish()
        yield from typed.judge_calls(step, self._state)

    def _typed_answer(self, step: StepState) -> Iterator[Event]:
        """A response without tool calls: its typed answer, or what to tell the model."""
        if self._typed is not None:
            yield from self._typed.judge_answer(step, self._state)
