"""`DurableAgent`: the workflow, its steps, and the transport that makes requests steps."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from contextlib import aclosing
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import httpx2
import openai
from dbos import DBOS, Queue, StepOptions, WorkflowHandleAsync

from agentstream import (
    Agent,
    AgentStreamError,
    Approval,
    ApprovalRequest,
    Event,
    RunFailed,
    RunResult,
    SetupError,
    Tool,
    ToolContext,
)

from ._control import ControlTable
from ._drive import NO_USAGE, drive, given_messages
from ._live import LiveWriter, is_live_request
from ._log import EventLog
from ._outside import ENDED, FromOutside
from ._record import Recorder
from ._steer import RunControl
from ._workers import Worker

__all__ = ["APPROVAL_TOPIC", "DurableAgent", "DurableResult"]

APPROVAL_TOPIC = "agentstream.approval:"
"""Messages deciding call `ID` are sent on topic `APPROVAL_TOPIC + ID`."""

_WEEK = 7 * 24 * 3600.0
NOT_RUN_AGAIN = (
    "outcome unknown: the run stopped while this call was running, and it was not run "
    "again because its tool is not idempotent"
)
"""The result of a call whose tool (not idempotent) a crash cut before its record."""
# The recorder of the run in this task: its request steps write their pieces live.
_RECORDER: ContextVar[Recorder | None] = ContextVar("agentstream_dbos_recorder", default=None)
# The steering of the run in this task: its tool steps watch for their cancellation.
_CONTROL: ContextVar[RunControl | None] = ContextVar("agentstream_dbos_control", default=None)


@dataclass(frozen=True, slots=True)
class DurableResult:
    """What a durable run returns (plain data, kept by DBOS as the workflow's output)."""

    output: str
    stop_reason: str
    messages: list[dict[str, Any]]
    usage: dict[str, int]
    state: str
    """The run's final `RunState` as JSON."""


class DurableAgent(FromOutside):
    """Runs `agent` as DBOS workflows named after `name`; make it before `DBOS.launch()`.

    Each model request is a step (its whole response is recorded, then assembled as
    usual), each tool call is a step (its result is recorded). Calls of one response
    run one after another, so recovery replays them in the same order. A call that
    needs approval publishes its request as the workflow event `APPROVAL_TOPIC + id`
    and waits, durably, up to `approval_timeout` seconds for `approve(...)`.

    With `events_url` (the DBOS system database's URL, SQLite or Postgres), every
    event of a run is written to its event log as the run goes: `stream` starts a run
    and yields its events, `events` attaches to any run by workflow id, from any
    process, from the start or after the last sequence number a reader saw.

    With `worker` (a `Worker` on the same database), the runs go on on whichever worker
    is alive, and a worker that another took over runs no further step.

    The request step sends over the network, or through `transport` (an
    `httpx2.AsyncBaseTransport`) for a model served in-process: with the offline or a
    scripted model of `agentstream.testing`, give `transport=model.async_transport()`.

    A run's `deps` (`run`, `stream`, `start`, `start_chat`) is kept with the workflow's
    input, so it must be plain data DBOS can store (a user id, not a connection); with
    `deps=factory`, the worker that runs the workflow (or recovers it) gives its tools
    `factory(data)`, made there: a pool or a client of that process. With an event
    log, a run can be steered from any process: `steer`, `cancel_call`, `cancel`.
    """

    def __init__(
        self,
        agent: Agent,
        *,
        name: str,
        approval_timeout: float = _WEEK,
        transport: httpx2.AsyncBaseTransport | None = None,
        events_url: str | None = None,
        deps: Callable[[Any], Any] | None = None,
        worker: Worker | None = None,
    ) -> None:
        if not isinstance(agent, Agent):
            raise SetupError("DurableAgent takes an agentstream.Agent")
        if not name or not isinstance(name, str):
            raise SetupError("a DurableAgent needs a name (its workflows are named after it)")
        if transport is not None and not isinstance(transport, httpx2.AsyncBaseTransport):
            raise SetupError("transport must be an httpx2.AsyncBaseTransport")
        if transport is None:
            _check_reachable(agent)
        self.name = name
        self.agent = agent
        self.approval_timeout = approval_timeout
        self._tools = dict(agent.tools)
        self.log = EventLog(events_url) if events_url is not None else None
        """Where the runs' events are written and read (None: the runs keep no events)."""
        self.control = ControlTable(self.log) if self.log is not None else None
        """Where stop and cancel requests wait for the process running each run."""
        self._deps = deps  # makes a run's deps in the worker from what the run was given

        # DBOS registers plain functions (by name), not bound methods.
        async def model_request(
            method: str,
            url: str,
            headers: list[tuple[str, str]],
            body: bytes,
            live: tuple[str, int, int, int] | None = None,
        ) -> tuple[int, list[tuple[str, str]], bytes, int]:
            writer = None
            if live is not None and self.log is not None and is_live_request(method, url, body):
                writer = LiveWriter(self.log, *live)
            return await _send(method, url, headers, body, transport, writer)

        async def tool_call(name: str, arguments: dict[str, Any], context: ToolContext) -> Any:
            control = _CONTROL.get()
            if control is None:
                return await self._tools[name].invoke(arguments, context)
            work = lambda: self._tools[name].invoke(arguments, context)  # noqa: E731
            return await control.guard(context.tool_call_id, work)

        async def run(prompt: str | list[dict[str, Any]], deps: Any = None) -> DurableResult:
            return await self._run(prompt, deps)

        self._request_step = DBOS.step(name=f"{name}.model_request")(model_request)
        self._tool_step = DBOS.step(name=f"{name}.tool_call")(tool_call)
        options: StepOptions = {"name": f"{name}.tool_call"}  # the async tools' step name

        async def sync_tool_call(tool: str, arguments: dict[str, Any], context: ToolContext) -> Any:
            # A sync tool's step runs whole in one worker thread: its result is recorded
            # there the moment the function returns, with no wait for the event loop in
            # between (a kill in that gap would run the finished tool again).
            call = self._tools[tool].invoke_here
            control = _CONTROL.get()
            if control is None:
                return await DBOS.run_step_async(options, call, arguments, context)
            async with anyio.create_task_group() as group:  # a cancel from outside: its flag
                group.start_soon(control.flag, context)
                checked = control.checked(context.tool_call_id, call)
                result = await DBOS.run_step_async(options, checked, arguments, context)
                group.cancel_scope.cancel()
            return result

        async def tool_started(began: list[bool]) -> None:
            began.append(True)  # runs the first time only: a replay returns the record

        self._started_step = DBOS.step(name=f"{name}.tool_started")(tool_started)
        self._sync_tool_step = sync_tool_call
        if worker is not None:  # a step starts only while no other worker can take the run
            self._request_step = worker.fence(self._request_step)
            self._tool_step = worker.fence(self._tool_step)
            self._sync_tool_step = worker.fence(self._sync_tool_step)
            self._started_step = worker.fence(self._started_step)
        self.workflow: Callable[..., Coroutine[Any, Any, DurableResult]] = DBOS.workflow(
            name=f"{name}.run"
        )(run)

    # --- starting runs -----------------------------------------------------------------

    async def run(
        self, prompt: str, *, workflow_id: str | None = None, deps: Any = None
    ) -> DurableResult:
        """Run to the end as a workflow and return its result."""
        handle = await self.start(prompt, workflow_id=workflow_id, deps=deps)
        result: DurableResult = await handle.get_result()
        return result

    async def start(
        self,
        prompt: str | list[dict[str, Any]],
        *,
        workflow_id: str | None = None,
        deps: Any = None,
    ) -> WorkflowHandleAsync[DurableResult]:
        """Start a run as a workflow in this process; its handle.

        `deps` is kept with the workflow's input (so it must be plain data DBOS can
        store); the worker that runs the workflow makes the run's deps of it: see
        `DurableAgent(deps=...)`.
        """
        from dbos import SetWorkflowID

        given = () if deps is None else (deps,)  # (runs started before deps existed)
        if workflow_id is None:
            return await DBOS.start_workflow_async(self.workflow, prompt, *given)
        with SetWorkflowID(workflow_id):
            return await DBOS.start_workflow_async(self.workflow, prompt, *given)

    async def enqueue(
        self,
        queue: Queue,
        prompt: str | list[dict[str, Any]],
        *,
        workflow_id: str | None = None,
        deps: Any = None,
    ) -> WorkflowHandleAsync[DurableResult]:
        """Put a run on a DBOS queue, for whichever worker process takes it."""
        from dbos import SetWorkflowID

        given = () if deps is None else (deps,)
        if workflow_id is None:
            return await queue.enqueue_async(self.workflow, prompt, *given)
        with SetWorkflowID(workflow_id):
            return await queue.enqueue_async(self.workflow, prompt, *given)

    async def stream(
        self, prompt: str, *, workflow_id: str | None = None, deps: Any = None
    ) -> AsyncGenerator[tuple[int, Event], None]:
        """Start a run as a workflow and yield its `(seq, event)` pairs to its end.

        With the id of a workflow that exists already, its events (DBOS starts no
        second run under one id). Leaving the loop early stops the reading, not the run.
        """
        log = self._need_log()
        handle = await self.start(prompt, workflow_id=workflow_id, deps=deps)
        async with aclosing(log.read(handle.workflow_id)) as reading:
            async for item in reading:
                yield item

    async def events(
        self, workflow_id: str, *, after: int = -1
    ) -> AsyncGenerator[tuple[int, Event], None]:
        """The `(seq, event)` pairs of run `workflow_id` after seq `after`, to its end.

        From any process whose DurableAgent has the same `events_url`: from the start
        (`after=-1`) or after the last seq a reader saw; it waits for the events still
        to come, and ends after `RunFinished` or `RunFailed`.
        """
        log = self._need_log()
        async with aclosing(log.read(workflow_id, after=after, ended=_ended)) as reading:
            async for item in reading:
                yield item

    async def start_chat(
        self,
        chat_id: str,
        messages: list[dict[str, Any]],
        holder: str | None = None,
        deps: Any = None,
    ) -> str:
        """Start the run of a chat's turn on `messages` (OpenAI message dicts); its id.

        The workflow id is made of the name, the chat id and the turn's length, so that
        the same turn sent again finds its run instead of starting a second one. The
        run becomes the chat's latest (`chat_run`), kept with `holder`, an opaque string
        (`agentstream.web` keeps a digest of the client's chat secret there).
        """
        log = self._need_log()
        workflow_id = f"{self.name}:{chat_id}:{len(messages)}"
        await self.start(messages, workflow_id=workflow_id, deps=deps)
        await anyio.to_thread.run_sync(log.set_chat_run, chat_id, workflow_id, holder)
        return workflow_id

    async def chat_run(self, chat_id: str) -> tuple[str, str | None] | None:
        """The workflow id of the chat's latest run and its holder, if it has one."""
        return await anyio.to_thread.run_sync(self._need_log().chat_run, chat_id)

    @staticmethod
    async def approve(
        workflow_id: str, call_id: str, approved: bool = True, reason: str | None = None
    ) -> None:
        """Decide a call waiting for approval in workflow `workflow_id` (from any process)."""
        message = {"approved": bool(approved), "reason": reason}
        await DBOS.send_async(workflow_id, message, topic=APPROVAL_TOPIC + call_id)

    @staticmethod
    async def waiting(workflow_id: str, call_id: str, timeout: float = 0) -> dict[str, Any] | None:
        """The approval request of call `call_id`, once the workflow has published it."""
        event = await DBOS.get_event_async(
            workflow_id, APPROVAL_TOPIC + call_id, timeout_seconds=timeout
        )
        return event if isinstance(event, dict) else None

    # --- the workflow --------------------------------------------------------------------

    async def _run(self, prompt: str | list[dict[str, Any]], given: Any = None) -> DurableResult:
        deps = self._deps(given) if self._deps is not None else given
        agent = self.agent.replace(
            client=self._client,
            tools=[tool.with_handler(self._tool_handler(tool)) for tool in self._tools.values()],
            approver=self._approver if self.agent.approver is None else self.agent.approver,
        )
        if self.log is None:
            return _durable(await agent.run(prompt, deps=deps))
        workflow_id = DBOS.workflow_id
        assert workflow_id is not None  # inside a workflow
        recorder = Recorder(self.log, workflow_id)
        token = _RECORDER.set(recorder)  # for the request steps of this run
        assert self.control is not None  # made with the log
        control = RunControl(self.control, workflow_id)
        steering = _CONTROL.set(control)  # for the tool steps of this run
        try:
            result = await drive(agent, prompt, deps, recorder, control)
        except AgentStreamError as error:
            if not recorder.ended:  # the run ends in its log, whatever ended it
                await recorder.add(RunFailed(error))
            raise
        finally:
            _CONTROL.reset(steering)
            _RECORDER.reset(token)
            await recorder.flush()
        if result is None:  # stopped: DBOS keeps the workflow cancelled, not this
            return DurableResult("", "cancelled", given_messages(prompt), NO_USAGE, "")
        return _durable(result)

    def _client(self) -> openai.AsyncOpenAI:
        """A client like the agent's whose requests go through the request step."""
        given = self.agent.client
        model_client = given if isinstance(given, openai.AsyncOpenAI) else given()
        transport = _StepTransport(self._request_step)
        return model_client.with_options(
            http_client=httpx2.AsyncClient(transport=transport), max_retries=0
        )

    def _tool_handler(self, tool: Tool) -> Callable[[dict[str, Any], ToolContext], Awaitable[Any]]:
        # A sync tool's step records its result in the tool's own thread.
        step = self._tool_step if tool.is_async else self._sync_tool_step

        async def handler(arguments: dict[str, Any], context: ToolContext) -> Any:
            if not tool.idempotent:  # a call is begun once: cut by a crash, it stays cut
                began: list[bool] = []
                await self._started_step(began)
                if not began:  # begun before, its result never recorded: it may have acted
                    return NOT_RUN_AGAIN
            result = await step(tool.name, arguments, context)
            control = _CONTROL.get()  # a call cancelled from outside: the run is told
            return result if control is None else await control.answered(result, context)

        return handler

    async def _approver(self, request: ApprovalRequest) -> Approval:
        topic = APPROVAL_TOPIC + request.id
        published = {
            "id": request.id,
            "tool": request.tool,
            "arguments": json.loads(request.raw_arguments or "{}"),
            "step": request.step,
        }
        await DBOS.set_event_async(topic, published)
        message = await DBOS.recv_async(topic=topic, timeout_seconds=self.approval_timeout)
        if not isinstance(message, dict):
            return Approval.deny("no decision arrived in time")
        return Approval(bool(message.get("approved")), message.get("reason"))


async def _ended(workflow_id: str) -> bool:
    """Whether the workflow has ended (a cancelled one writes no RunFinished)."""
    try:
        status = await DBOS.get_workflow_status_async(workflow_id)
    except Exception:  # DBOS not launched in this process: rely on the events alone
        return False
    return status is not None and status.status in ENDED


def _check_reachable(agent: Agent) -> None:
    """Refuse at once a model the request step could not reach over the network."""
    given = agent.client
    try:
        # A factory tells its URL only in a client: make one to read it (no connection yet).
        base_url = (given if isinstance(given, openai.AsyncOpenAI) else given()).base_url
    except Exception:  # a factory that fails now fails in the run, with the run's error
        return
    if base_url.host.endswith(".invalid"):  # a reserved name: the in-process models use it
        raise SetupError(
            f"this agent's model is served in-process (base URL {base_url}), which "
            "the request step cannot reach over the network: give DurableAgent(..., "
            "transport=model.async_transport()) (the offline or scripted model's), or a "
            "model over HTTP (python -m agentstream serve-model)"
        )


async def _send(
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes,
    transport: httpx2.AsyncBaseTransport | None = None,
    writer: LiveWriter | None = None,
) -> tuple[int, list[tuple[str, str]], bytes, int]:
    """The request step: send it, read the whole response, return it for the record.

    With `writer`, the response's pieces also go to the event log as they arrive; the
    last item is how many rows that wrote (-1 without a writer).
    """
    http = httpx2.AsyncClient(transport=transport, timeout=httpx2.Timeout(600.0))
    try:
        if writer is None:
            response = await http.request(method, url, headers=headers, content=body)
            return response.status_code, list(response.headers.items()), response.content, -1
        await writer.begin()
        content = bytearray()
        request = http.build_request(method, url, headers=headers, content=body)
        response = await http.send(request, stream=True)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(writer.keep_writing)
                async for piece in response.aiter_bytes():
                    content += piece
                    if response.status_code == 200:
                        writer.feed(piece)
                group.cancel_scope.cancel()
            await writer.finish()
        finally:
            await response.aclose()
        return response.status_code, list(response.headers.items()), bytes(content), writer.rows
    finally:
        if transport is None:  # a given transport is the caller's: closing it is theirs
            await http.aclose()


class _StepTransport(httpx2.AsyncBaseTransport):
    """Sends each request through the DBOS request step; replays its recorded response."""

    def __init__(self, step: Callable[..., Awaitable[tuple[Any, ...]]]) -> None:
        self._step = step

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() != "content-length"]
        recorder = _RECORDER.get()
        live = await recorder.live_start() if recorder is not None else None
        status, response_headers, content, *rest = await self._step(
            request.method, str(request.url), headers, body, live
        )
        if recorder is not None:  # a record made before live pieces has no count: -1
            recorder.streamed(rest[0] if rest else -1)
        kept = [
            (k, v)
            for k, v in response_headers
            if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        ]
        return httpx2.Response(status, headers=kept, content=content, request=request)


def _durable(result: RunResult) -> DurableResult:
    usage = result.usage
    return DurableResult(
        output=result.output,
        stop_reason=result.stop_reason,
        messages=[dict(message) for message in result.messages],
        usage={
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
        state=result.state.to_json() if result.state is not None else "",
    )
