"""A run in progress: stream a step, run the tools it asks for, repeat until an answer."""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal

import anyio
import openai
from anyio.abc import TaskGroup

from .._events import (
    Event,
    MaxStepsReached,
    RunFailed,
    RunFinished,
    RunStarted,
    StepStarted,
)
from .._exceptions import RetriesExhausted, RunError, RunTimeout, SetupError
from .._redact import redact, redact_error, secret_of
from .._result import OutputT, RunResult
from ..output._watch import OutputWatch
from ..state._state import PendingCall, RunState, StopReason
from ..wire.chat._assemble import StreamAssembler
from ..wire.responses._assemble import ResponsesAssembler
from ._approval import check_decisions, decide
from ._budget import Budget
from ._calls import (
    resumed_step,
    sort_calls,
    stop_after,
)
from ._cancel import CallControl
from ._context import ContextKeeper, server_fields
from ._early import EarlyStarts
from ._early_stream import early_chunks
from ._execute import ToolRunner
from ._hooks import RunHooks
from ._observe import RunObserver, observed
from ._record import answer_calls, end_step, run_result, take_response
from ._route import Route
from ._send import Attempt, open_attempt
from ._session import SessionKeeper, worth_saving
from ._spending import fall_back, masking, result_fields, spending, spent
from ._steer import queue_message
from ._step import attempt_failed, check_complete, tool_limit
from ._step_state import StepState
from ._typed import TypedRun

if TYPE_CHECKING:
    from ._config import RunConfig, RunStart

__all__ = ["AgentRun"]

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
        config: RunConfig,
        start: RunStart,
        request: Mapping[str, Any],
        typed: TypedRun | None = None,
    ) -> None:
        self._config = config
        # The agent's request settings as they are, unless this run adds to them.
        self._request: Mapping[str, Any] = config.request
        self._context: ContextKeeper | None = None  # with `Agent(context=...)` only
        if request or config.context is not None:
            self._request = {**config.request, **request}
        if config.context is not None:
            self._context = ContextKeeper(config, config.context)
            self._request = {**self._request, **server_fields(config)}
        self._typed = typed
        self._result: RunResult[OutputT] | None = None
        self._task_group: TaskGroup | None = None
        self._events: AsyncGenerator[Event, None] | None = None
        self._secret: str | None = None
        self._rng: random.Random | None = None  # made at the first retry: seeding costs
        self._watchers: tuple[RunObserver, ...] = ()  # the agent's observers of this run
        self._runner: ToolRunner | None = None  # the last relay of early calls
        self._control = CallControl(config, start)  # cancel_call, the cap, nested approvals
        self._start = start
        self._approver = self._control.approver  # the run's, else the agent's
        self._keeper = SessionKeeper(start.session) if start.session is not None else None
        self._hooks = RunHooks(config)  # steering, step overrides, guardrails
        self._budget: Budget | None = None  # with usage limits or prices (see `_spending`)
        self._route: Route | None = None  # with fallback models
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

    def cancel_call(self, call_id: str, reason: str | None = None) -> None:
        """Cancel one tool call of the step under way; the run goes on.

        An async tool is cancelled, a sync tool's `ctx.cancelled` turns true (its thread
        is left to end), a call still waiting to start never starts. `ToolCancelled`
        carries `reason`, and the model is told the user cancelled the call (and why).
        Raises `CallNotRunning` for an id that is not running or waiting to run.
        """
        self._control.cancel(call_id, reason)

    def send(self, text: str) -> str:
        """Send the run a user message, read before its next request (docs/steering.md); its id."""
        return queue_message(self._state, text, self._hooks.news, self._control.nudge)

    async def __aenter__(self) -> AgentRun[OutputT]:
        if self._task_group is not None:
            raise RuntimeError("a run can be entered only once")
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._events = self._run()
        if self._config.observers:
            self._watch()
        return self

    def _watch(self) -> None:
        """Let the agent's observers watch this run: its events and its tool calls."""
        watchers = (observer.observe(self) for observer in self._config.observers)
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
        """Step after step until the model answers, a limit ends the run, or it pauses:
        request until a whole response arrives, settle its calls (`_settle`), repeat.
        One generator, the chunk loop inline: each generator between the socket and
        the consumer would cost a hop per event."""
        config = self._config
        started = perf_counter()
        given = config.client
        client = given if isinstance(given, openai.AsyncOpenAI) else given()
        try:
            await self._load()
            yield RunStarted(self.run_id, config.model, tuple(config.tools))
            self._secret = secret = secret_of(client.api_key)
            self._budget, self._route = spending(config, self._start, self._state, client)
            state, limits, typed, deps = self._state, config.timeouts, self._typed, self._start.deps
            run_deadline = started + limits.run if limits.run else math.inf
            while True:
                if self._budget and (reached := self._budget.before_request(state, self._config)):
                    yield reached  # the request is not sent
                    yield RunFinished(await self._finish(StepState(0), "usage_limit", started))
                    return
                step = self._begin_step()
                if not self._hooks.idle(state):
                    async for event in self._hooks.before_step(step, state, self._task_group, deps):
                        yield event
                self._config = self._hooks.config  # this step's (see `prepare_step`)
                if not step.resumed:
                    while True:  # attempts at this step
                        if limits.run and perf_counter() >= run_deadline:
                            raise RunTimeout("run", limits.run)
                        if self._context is not None:  # the view this request sends
                            compacting = self._context.prepare(
                                state, step.number, client, secret, run_deadline
                            )
                            async with aclosing(compacting) as compactions:
                                async for compacted in compactions:
                                    yield compacted
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
                                    starting = early_chunks(
                                        chunks, assembler, step, early, watch, secret
                                    )
                                    async with aclosing(starting) as early_events:
                                        async for event in early_events:
                                            yield event
                            # (an input guardrail's trip cuts the first response)
                            if self._hooks.guards is None or not self._hooks.cut:
                                check_complete(assembler, stream)
                        except RunError as exc:  # told, then asked again (or raised)
                            retrying = self._retry(step, assembler, exc, run_deadline)
                            async with aclosing(retrying) as told:
                                async for event in told:
                                    yield event
                        else:
                            break
                    for event in self._take(step, assembler, watch):
                        yield event
                async with aclosing(self._settle(step, run_deadline)) as settling:
                    async for event in settling:
                        yield event
                if step.stop is not None:
                    break
                if self._keeper is not None:
                    await self._keeper.save(state)
            yield RunFinished(await self._finish(step, step.stop, started))
        except Exception as exc:
            yield RunFailed(exc)
            raise
        finally:
            await self._close(client is not given and client)

    async def _load(self) -> None:
        """Take the run up from its session, if it has one."""
        if self._keeper is not None:
            start = self._start
            self._state = await self._keeper.load(
                self._state, resume=start.resume, added=start.added
            )
            self.run_id = self._state.run_id

    async def _close(self, made: openai.AsyncOpenAI | Literal[False]) -> None:
        """The run's end, or its block left: free the session, close what it `made`."""
        keeper = self._keeper
        if keeper is not None and keeper.claim is not None and self._result is None:
            with anyio.CancelScope(shield=True):  # failed or left: free the session
                await keeper.release()
        if self._runner is not None:
            self._runner.close()  # the early calls' relay, if the run is left mid-step
        if made:
            with anyio.CancelScope(shield=True):
                await made.close()

    async def _checkpoint(self) -> None:
        if self._keeper is not None:
            await self._keeper.save(self._state)

    async def _retry(
        self,
        step: StepState,
        assembler: StreamAssembler | ResponsesAssembler,
        exc: RunError,
        run_deadline: float,
    ) -> AsyncGenerator[Event, None]:
        """A broken attempt: its events, the wait before the next; raised if none is left."""
        told, delay = self._after_failure(step, assembler, exc, run_deadline)
        for event in told:
            yield event
        if delay is None:
            return  # asked again at once (another form, another model)
        if delay < 0:  # no retry left
            if len(step.failures) > 1:
                raise RetriesExhausted(tuple(step.failures)) from exc
            raise exc
        self._state.retries_used += 1
        await anyio.sleep(delay)

    async def _settle(self, step: StepState, run_deadline: float) -> AsyncGenerator[Event, None]:
        """After a whole response: its calls sorted (a fresh step's), decisions, the
        tools, the step's record; `step.stop` says why the run ends here
        (`approval_required` while calls wait), or None."""
        hooks, message = self._hooks, step.message
        guarding = hooks.guards is not None and hooks.guarding
        asked = message is not None and (
            bool(message.tool_calls) or step.early is not None or guarding
        )
        if not step.resumed and asked:
            if guarding:  # the first response: the input guardrails' verdicts first
                async with aclosing(hooks.input_verdict(step)) as verdicts:
                    async for event in verdicts:
                        yield event
            if step.stop is None:  # validated, checked against the limits: sorted
                answered = self._typed.answered if self._typed is not None else {}
                sorted_calls = await sort_calls(
                    self._config, self._state, step, answered, self.run_id, self._start.deps
                )
                for event in sorted_calls:
                    yield event
        if step.stop is not None:  # an input guardrail stopped the run
            return
        if step.resumed is not None or "awaiting_approval" in [c.status for c in step.calls]:
            async for event in self._decide(step):
                yield event
        elif step.calls and self._keeper is not None:  # (`_decide` would only save it)
            await self._keeper.save(self._state)
        if step.runnable:
            runner, by_id, keeper, started = self._start_tools(step, run_deadline)
            try:
                try:  # each call's events, relayed; the state saved as calls start and end
                    while tool_events := await runner.next():
                        for tool_event in tool_events:
                            yield tool_event
                            if hooks.news:  # messages sent while the tools run
                                for event in hooks.announce():
                                    yield event
                            if keeper is not None and worth_saving(tool_event, by_id):
                                await keeper.save(self._state)
                finally:
                    runner.close()
            finally:
                # Also when the run is left or cancelled mid-way: every call gets an
                # answer, so the conversation stays consistent and can be continued.
                answer_calls(self._state, step, step.runnable, by_id)
            step.tool_time = perf_counter() - started
        elif step.early is not None:
            step.early.runner.close()  # else closed once the calls have run
        if "awaiting_approval" in [call.status for call in step.calls]:
            step.stop = "approval_required"
            return
        if self._typed is not None:  # a response without calls: its typed answer, or a nudge
            for event in self._typed.judge_answer(step, self._state):
                yield event
        yield end_step(self._state, step)
        if self._typed is not None:
            self._typed.add_feedback(self._state)
        step.stop, at_step_limit = stop_after(self._config, self._state, step, self._typed)
        if at_step_limit:
            yield MaxStepsReached(step.number, self._config.max_steps)
        if step.stop is not None:  # a message sent meanwhile, or the output guardrails
            async with aclosing(hooks.answered(self._state, step, self._typed)) as more:
                async for event in more:
                    yield event

    def _begin_step(self) -> StepState:
        """The next step, or the saved step whose calls are not all answered yet.

        Past the step limit a step may only answer (no tools offered).
        """
        state = self._state
        if state.pending is not None:
            return resumed_step(state.pending, self._config)
        state.step += 1
        if state.final_only is None and state.step > self._config.max_steps:
            state.final_only = "max_steps"
        return StepState(state.step)

    def _send(self, step: StepState, client: openai.AsyncOpenAI, run_deadline: float) -> Attempt:
        """Send one attempt at `step` (see `open_attempt`); ready its early starts."""
        config = self._config
        if self._route is not None:  # the model whose turn it is, on its client
            config, client = self._route.attempt(step)
        view = self._context.view if self._context is not None else None
        attempt = open_attempt(
            config, self._state, step, client, self._request, self.run_id, run_deadline,
            self._typed, view,
        )  # fmt: skip
        if self._config.early_tools:
            step.early = self._early_starts(step, run_deadline)
        hooks = self._hooks
        return attempt if hooks.guards is None or not hooks.guarding else hooks.watch(attempt)

    def _early_starts(self, step: StepState, run_deadline: float) -> EarlyStarts | None:
        """What starts the calls of this attempt early, if any tool may start early."""
        config = self._config
        if self._hooks.guarding or not any(tool.early for tool in config.tools.values()):
            return None  # (no call starts before the input guardrails' verdicts)
        assert self._task_group is not None
        runner = ToolRunner(
            self._task_group, self.run_id, step.number, config.max_result_size, self._watchers,
            self._start.deps, self._control, config.max_media_size,
        )  # fmt: skip
        self._runner = runner
        timeout = tool_limit(config.timeouts, run_deadline)
        return EarlyStarts(config, self._state, step.number, runner, timeout, step.reusable)

    def _after_failure(
        self,
        step: StepState,
        assembler: StreamAssembler | ResponsesAssembler,
        exc: RunError,
        run_deadline: float,
    ) -> tuple[list[Event], float | None]:
        """A broken attempt at `step`: the events to report, and when to try again:
        after a delay in seconds (a retry), None (at once, not counted as a retry: by the
        final tool after a refused `response_format`, or on a fallback model), or -1
        (never: the error ends the run once the events are out)."""
        events: list[Event] = []
        if step.early is not None:
            if self._secret is not None:
                redact_error(exc, self._secret)  # before its text is copied
            events.extend(step.early.abandon(f"the attempt at this step failed: {exc}"))
        if self._typed is not None and self._typed.fall_back(exc):
            return events, None
        self._rng = self._rng or random.Random()  # made at the first retry: seeding costs
        retries = self._config.retries
        left = self._state.retries_left(retries.budget)
        secret, tried = masking(self._route, self._secret)
        delay, interrupted = attempt_failed(
            step, assembler, exc, retries, left, self._rng, run_deadline, secret, tried
        )
        if self._context is not None and self._context.refused(exc, step.number):
            # Too long for the server: compact harder and try once more.
            delay, interrupted = 0.0, dataclasses.replace(interrupted, retry_in=0.0)
        events.append(interrupted)
        if delay is None and (fell := fall_back(self._route, step, exc)):
            events.append(fell)
            return events, None
        return events, -1.0 if delay is None else delay

    def _take(
        self,
        step: StepState,
        assembler: StreamAssembler | ResponsesAssembler,
        watch: OutputWatch | None,
    ) -> list[Event]:
        """A whole response: keep it, price it, judge its typed answer (its calls are
        sorted as the step settles)."""
        take_response(self._state, step, assembler)
        events: list[Event] = []
        if self._budget is not None or self._route is not None:
            events.extend(spent(self._budget, self._route, self._state, step))
        if watch is not None and self._typed is not None:  # typed output (see `_typed`)
            events.extend(watch.finish())  # the last partial value of the answer
            events.extend(self._typed.judge_calls(step, self._state))  # the final-answer call
        return events

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

    def _start_tools(
        self, step: StepState, run_deadline: float
    ) -> tuple[ToolRunner, dict[str, PendingCall], SessionKeeper | None, float]:
        """Hand the step's runnable calls to a runner (the early starts' own, if any):
        the runner, the calls by id, the keeper that saves the state, the start time.

        With a session, the state is saved before each batch of calls starts and as each
        finishes, so after a crash a finished call is never run again and a started one
        is known to have started.
        """
        state = self._state
        config = self._config
        assert self._task_group is not None
        started = perf_counter()
        runnable = step.runnable
        state.calls_run += len(runnable)
        by_id = {call.id: call for call in step.calls}
        keeper = self._keeper
        starting = None if keeper is None else functools.partial(keeper.starting, state)
        runner = (
            step.early.runner
            if step.early is not None
            else ToolRunner(
                self._task_group, self.run_id, step.number, config.max_result_size,
                self._watchers, self._start.deps, self._control, config.max_media_size,
            )
        )  # fmt: skip
        context = (*state.messages, step.assistant)
        runner.begin(runnable, context, tool_limit(config.timeouts, run_deadline), starting)
        return runner, by_id, keeper, started

    async def _finish(
        self, step: StepState, stop: StopReason, started: float
    ) -> RunResult[OutputT]:
        self._state.stop_reason = stop
        await self._checkpoint()
        self._result = run_result(
            self._state, step, stop, started, self._config, self._typed, self._hooks,
            result_fields(self._budget),
        )  # fmt: skip
        return self._result
