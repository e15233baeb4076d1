"""The agent loop: stream a step, run the tools it asks for, repeat until an answer."""

from __future__ import annotations

import functools
import math
import secrets
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from time import perf_counter
from types import TracebackType
from typing import Any

import anyio
import openai
from anyio.abc import TaskGroup

from ._assemble import StreamAssembler, error_message
from ._events import (
    Event,
    MaxStepsReached,
    RunFailed,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    ToolCallInvalid,
    ToolCallReady,
)
from ._exceptions import (
    ErrorBudgetExceeded,
    RunTimeout,
    SetupError,
    StreamError,
    ToolArgumentsError,
)
from ._execute import ToolRun, run_tools
from ._message import AssembledResponse, AssembledToolCall
from ._model import ModelStream
from ._result import RunResult, StepInfo, StopReason
from ._timeouts import Timeouts
from ._tools import Tool, build_toolset
from ._usage import Usage

__all__ = ["Agent", "AgentRun"]

ClientLike = openai.AsyncOpenAI | Callable[[], openai.AsyncOpenAI]
Prompt = str | Sequence[Mapping[str, Any]]

# Request fields the loop owns; anything else passes through to the server untouched.
_OWNED = frozenset({"messages", "model", "stream", "tools"})

_CANCELLED = "cancelled: the run was stopped before this call finished"
_NOT_RUN: dict[StopReason, str] = {
    "length": "not run: the response hit the token limit before this call was complete",
    "content_filter": "not run: the server's content filter withheld the response",
    "max_steps": "not run: the run reached its step limit",
}


class Agent:
    """A model, a set of tools and the rules for running them.

    `client` is an `openai.AsyncOpenAI` (or a function that makes one for each run, which
    the run then closes). Keyword arguments beyond the named ones (`temperature`,
    `tool_choice`, `max_tokens`, `extra_headers`, `extra_body`, ...) are sent with every
    request as they are. `max_steps` bounds the requests of a run; with
    `final_answer=True` a run that reaches it makes one more request without tools so
    the user still gets an answer. `max_invalid_calls` is the run-wide budget of tool
    calls the model may get wrong before the run fails with `ErrorBudgetExceeded`.
    """

    __slots__ = (
        "_client",
        "final_answer",
        "instructions",
        "max_invalid_calls",
        "max_steps",
        "model",
        "partial_arguments",
        "request",
        "timeouts",
        "tools",
    )

    def __init__(
        self,
        *,
        client: ClientLike,
        model: str,
        tools: Iterable[Tool | Callable[..., Any]] = (),
        instructions: str | None = None,
        max_steps: int = 10,
        final_answer: bool = False,
        max_invalid_calls: int = 10,
        partial_arguments: bool = True,
        timeouts: Timeouts | None = None,
        **request: Any,
    ) -> None:
        if not isinstance(client, openai.AsyncOpenAI) and not callable(client):
            raise SetupError("client must be an openai.AsyncOpenAI or a function returning one")
        if not isinstance(model, str) or not model:
            raise SetupError("model must be a non-empty string")
        if not isinstance(max_steps, int) or max_steps < 1:
            raise SetupError(f"max_steps must be a positive integer, not {max_steps!r}")
        if not isinstance(max_invalid_calls, int) or max_invalid_calls < 0:
            raise SetupError(f"max_invalid_calls must be 0 or more, not {max_invalid_calls!r}")
        _check_request(request)
        self._client = client
        self.model = model
        self.tools: dict[str, Tool] = build_toolset(tools)
        self.instructions = instructions
        self.max_steps = max_steps
        self.final_answer = final_answer
        self.max_invalid_calls = max_invalid_calls
        self.partial_arguments = partial_arguments
        self.timeouts = timeouts or Timeouts()
        self.request: dict[str, Any] = request

    def __repr__(self) -> str:
        return f"Agent(model={self.model!r}, tools={list(self.tools)!r})"

    def stream(self, prompt: Prompt, **request: Any) -> AgentRun:
        """Start a run whose events you iterate: `async with agent.stream(p) as run:`.

        `prompt` is the user's text or a whole conversation of OpenAI message dicts.
        Keyword arguments override the agent's request fields for this run.
        """
        _check_request(request)
        return AgentRun(self, _conversation(prompt, self.instructions), request)

    async def run(self, prompt: Prompt, **request: Any) -> RunResult:
        """Run to the end and return the result."""
        async with self.stream(prompt, **request) as run:
            async for _ in run:
                pass
        return run.result

    def run_sync(self, prompt: Prompt, *, backend: str = "asyncio", **request: Any) -> RunResult:
        """Run to the end from synchronous code (starts and ends its own event loop).

        Give the agent a client factory when you call this more than once: a client's
        connections belong to the event loop they were opened in.
        """
        return anyio.run(functools.partial(self.run, prompt, **request), backend=backend)


def _check_request(request: Mapping[str, Any]) -> None:
    owned = sorted(_OWNED.intersection(request))
    if owned:
        raise SetupError(f"agentstream sets these request fields itself: {', '.join(owned)}")


def _conversation(prompt: Prompt, instructions: str | None) -> list[dict[str, Any]]:
    if isinstance(prompt, str):
        messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    else:
        messages = []
        for message in prompt:
            if not isinstance(message, Mapping) or "role" not in message:
                raise SetupError(f"each message must be a dict with a 'role': {message!r}")
            messages.append(dict(message))
    starts_with_system = bool(messages) and messages[0]["role"] in ("system", "developer")
    if instructions and not starts_with_system:
        messages.insert(0, {"role": "system", "content": instructions})
    return messages


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
            # wrapped in an exception group.
            self._task_group.cancel_scope.cancel()
            await self._task_group.__aexit__(None, None, None)
        return None

    def __aiter__(self) -> AgentRun:
        return self

    async def __anext__(self) -> Event:
        if self._events is None:
            raise RuntimeError("use the run inside `async with agent.stream(...) as run:`")
        return await self._events.__anext__()

    async def _run(self) -> AsyncGenerator[Event, None]:
        agent = self._agent
        started = perf_counter()
        client = agent._client
        owned = not isinstance(client, openai.AsyncOpenAI)
        if owned:
            client = client()  # type: ignore[operator]
        try:
            yield RunStarted(self.run_id, agent.model, tuple(agent.tools))
            async with aclosing(self._steps(client, started)) as steps:  # type: ignore[arg-type]
                async for event in steps:
                    yield event
        except Exception as exc:
            yield RunFailed(exc)
            raise
        finally:
            if owned:
                with anyio.CancelScope(shield=True):
                    await client.close()  # type: ignore[union-attr]

    async def _steps(
        self, client: openai.AsyncOpenAI, started: float
    ) -> AsyncGenerator[Event, None]:
        agent = self._agent
        usage = Usage()
        steps: list[StepInfo] = []
        first_new = len(self._messages)
        invalid_calls = 0
        step = 0
        limits = agent.timeouts
        run_deadline = started + limits.run if limits.run else math.inf
        while True:
            step += 1
            extra_step = step > agent.max_steps  # the final answer without tools
            if limits.run and perf_counter() >= run_deadline:
                raise RunTimeout("run", limits.run)
            yield StepStarted(step)
            sent = perf_counter()
            first_token: float | None = None
            assembler = StreamAssembler(step=step, partial_arguments=agent.partial_arguments)
            step_deadline = sent + limits.step if limits.step else math.inf
            stream = ModelStream(client, self._params(extra_step))
            source = stream.chunks()
            if limits.bounds_streams:
                source = _within_limits(source, limits, step_deadline, run_deadline)
            async with aclosing(source) as chunks:
                async for chunk in chunks:
                    events = assembler.feed(chunk)
                    if events:
                        if first_token is None:
                            first_token = perf_counter()
                        for stream_event in events:
                            yield stream_event
            finished = perf_counter()
            response = assembler.finish()
            if response.errors:
                payload = response.errors[0]
                raise StreamError(
                    f"the server reported an error in the stream: {error_message(payload)}",
                    body=payload,
                )
            if not stream.done and assembler.finish_reason is None:
                # Servers end with a finish reason, `[DONE]`, or both: with neither, the
                # body may have been cut, and its tool calls must not run.
                raise StreamError("the stream ended early: no finish reason and no [DONE]")

            calls = response.message.tool_calls
            reason = response.finish_reason
            stop: StopReason | None = None
            outputs: dict[int, str] = {}
            runnable: list[ToolRun] = []
            not_run: StopReason | None = (
                "length" if reason == "length"
                else "content_filter" if reason == "content_filter"
                else "max_steps" if extra_step
                else None
            )  # fmt: skip
            for call in calls:
                if not_run is not None:
                    error = _NOT_RUN[not_run]
                else:
                    ready, error = self._validate(call, step)
                    if ready is not None:
                        runnable.append(ready)
                        yield ToolCallReady(
                            step, call.index, call.id, ready.tool.name, ready.arguments,
                            call.arguments,
                        )  # fmt: skip
                        continue
                    invalid_calls += 1
                outputs[call.index] = f"Invalid tool call: {error}"
                yield ToolCallInvalid(step, call.index, call.id, call.name, call.arguments, error)

            assistant = self._assistant_message(response)
            tool_started = perf_counter()
            if runnable:
                context = (*self._messages, assistant)
                assert self._task_group is not None
                tool_limit = _tool_limit(limits, run_deadline)
                batch = run_tools(
                    self._task_group, runnable, self.run_id, step, context, tool_limit
                )
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
            ttft, duration, rate = _timings(sent, first_token, finished, step_usage)
            steps.append(
                StepInfo(step, reason, step_usage, ttft, duration, rate, len(calls), tool_time)
            )
            yield StepFinished(step, reason, assistant, step_usage, ttft, duration, rate)

            if invalid_calls > agent.max_invalid_calls:
                raise ErrorBudgetExceeded(
                    f"the model made {invalid_calls} invalid tool calls in this run "
                    f"(the budget is {agent.max_invalid_calls})"
                )
            if not_run is not None:
                stop = not_run
            elif not calls:
                stop = _answer_reason(response)
            elif step >= agent.max_steps:
                yield MaxStepsReached(step, agent.max_steps)
                if not agent.final_answer:
                    stop = "max_steps"
            if stop is not None:
                break

        message = response.message
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
            params["tools"] = [tool.definition() for tool in agent.tools.values()]
            if extra_step:
                params["tool_choice"] = "none"
        return params

    def _validate(self, call: AssembledToolCall, step: int) -> tuple[ToolRun | None, str]:
        tools = self._agent.tools
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
    def _assistant_message(response: AssembledResponse) -> dict[str, Any]:
        message = response.message.to_dict()
        for call in message.get("tool_calls", ()):
            if call["function"]["name"] is None:
                call["function"]["name"] = ""  # servers reject a null name in requests
        return message


async def _within_limits(
    chunks: AsyncGenerator[dict[str, Any], None],
    limits: Timeouts,
    step_deadline: float,
    run_deadline: float,
) -> AsyncGenerator[dict[str, Any], None]:
    """`chunks`, failing with `RunTimeout` when the next one takes too long.

    Each wait is bounded by the tightest limit left: to the first chunk or between
    chunks, and what remains of the step and of the run. The cancel scope covers only
    the wait, never a `yield`.
    """
    async with aclosing(chunks):
        received = False
        while True:
            now = perf_counter()
            gap = limits.idle if received else limits.first_chunk
            waits = [(gap, "idle" if received else "first_chunk", gap)] if gap else []
            if limits.step:
                waits.append((step_deadline - now, "step", limits.step))
            if limits.run:
                waits.append((run_deadline - now, "run", limits.run))
            wait, limit, seconds = min(waits) if waits else (math.inf, "", 0.0)
            with anyio.move_on_after(max(wait, 0.0)) as scope:
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    return
            if scope.cancelled_caught:
                raise RunTimeout(limit, seconds)
            received = True
            yield chunk


def _tool_limit(limits: Timeouts, run_deadline: float) -> float | None:
    """Seconds a tool may run: its own limit, cut by what is left of the run's."""
    left = run_deadline - perf_counter() if limits.run else None
    if limits.tool is None:
        return None if left is None else max(left, 0.0)
    return limits.tool if left is None else max(min(limits.tool, left), 0.0)


def _answer_reason(response: AssembledResponse) -> StopReason:
    if response.message.refusal:
        return "refusal"
    if response.finish_reason in ("length", "content_filter"):
        return response.finish_reason  # type: ignore[return-value]
    return "answer"


def _timings(
    sent: float, first_token: float | None, finished: float, usage: Usage | None
) -> tuple[float | None, float, float | None]:
    """Time to first token, duration and tokens per second of one step."""
    ttft = first_token - sent if first_token is not None else None
    rate = None
    if usage is not None and usage.completion_tokens and first_token is not None:
        generating = finished - first_token
        if generating > 0:
            rate = usage.completion_tokens / generating
    return ttft, finished - sent, rate
