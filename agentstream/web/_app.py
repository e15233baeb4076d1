"""The Starlette app: the chat page, the UI message stream, the JSON events, reattaching.

Routes (all under the app's mount point):

- `GET /`: the chat page (and its `/static/` files), served from the package.
- `POST /api/chat`: `{"id": chat id, "messages": [UI messages]}` (what `useChat` sends);
  answers the run as the AI SDK UI message stream. When the last message is the
  assistant's with tool parts in the `approval-responded` state, the chat's run paused
  for approval is resumed with those decisions and streams into that same message.
- `GET /api/chat/{id}/stream`: reattach to the chat's run (the AI SDK's resume request):
  every part again, or those after the `Last-Event-ID` header; 204 when there is none.
- `POST /api/events`: `{"prompt": text}` or `{"messages": [OpenAI messages]}`; answers
  agentstream's JSON events over SSE, each with an `id:` line; the run's key is in the
  `x-agentstream-run` header. `GET /api/events/{key}` reattaches (`Last-Event-ID`).
- `POST /api/chat/{id}/stop`, `POST /api/events/{key}/stop`: cancel the run.
- `POST /api/chat/{id}/cancel`, `POST /api/events/{key}/cancel`: `{"toolCallId": id,
  "reason": text or null}` cancels one tool call (`AgentRun.cancel_call`); the run goes
  on. 204, or 409 when no such call is running or waiting.
- `POST /api/chat/{id}/steer`, `POST /api/events/{key}/steer`: `{"text": ...}`, a user
  message for the run in progress (`AgentRun.send`), delivered at its next step
  boundary; answers `{"id": message id}`, or 409 when the run has ended or paused.

Every request first passes `_guard.Guard` (allowed `Host`, same `Origin`, JSON bodies,
the token). A client may send `x-agentstream-chat-secret` with a chat's first request:
that chat's run can then be replaced, resumed, stopped or read again only with it.
"""

from __future__ import annotations

import inspect
import logging
import secrets
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import anyio
from pydantic_core import from_json
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from agentstream import (
    Agent,
    AgentRun,
    AgentStreamError,
    Approval,
    CallNotRunning,
    RunState,
    SetupError,
    Store,
)

from ._checkpoints import Checkpoints, Paused
from ._durable import DurableRuns, DurableStream, held_by, holder_of
from ._durable_control import durable_cancel_call, durable_steer, durable_wire
from ._guard import Guard, valid_key
from ._messages import MessageError, approvals_of, last_assistant_id, restore_wire, to_openai
from ._page import no_content, page_file
from ._runs import Frame, LiveRun, NotHolder, RegistryFull, RunRegistry
from ._ui_stream import UI_STREAM_HEADERS

__all__ = ["create_app"]

logger = logging.getLogger("agentstream.web")

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_SECRET_HEADER = "x-agentstream-chat-secret"
_MAX_SECRET = 256
_MAX_CALL_ID = 256
_MAX_REASON = 1000


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(
    agent: Agent | Callable[[], Agent],
    *,
    registry: RunRegistry | None = None,
    max_body_size: int = 1_000_000,
    keep_alive: float = 15.0,
    token: str | None = None,
    store: Store | None = None,
    allowed_hosts: Sequence[str] | None = None,
    allowed_origins: Sequence[str] = (),
    keep_finished: float = 120.0,
    max_finished: int = 20,
    deps: Callable[[Request], Any] | None = None,
    durable: DurableRuns | None = None,
) -> Starlette:
    """A Starlette app that runs `agent` for each chat request (mount it in FastAPI as is).

    `agent` may be a function that makes an agent per run. `registry` keeps the runs for
    reattaching (a default one if None); request bodies over `max_body_size` bytes are
    refused; a keep-alive comment goes out after `keep_alive` seconds without a part;
    with `token`, every `/api/` request must carry `Authorization: Bearer <token>`.
    With `store` (an `agentstream.Store`, e.g. `agentstream.stores.SQLiteStore`), a run
    paused for approval is also kept there under its chat id, so that the decisions can
    arrive after a restart. `deps(request)` (sync or async) makes each run's `deps`,
    which its tools read as `ctx.deps`: the user the request is for, say.
    With `durable` (an `agentstream.dbos.DurableAgent` with an event log), each chat's
    run is a durable workflow and every reader follows its event log: see `_durable`.

    Only the loopback `Host` names (any port) and those in `allowed_hosts` are answered
    (`"*"` for any), and browsers only from the app's own origin or
    `allowed_origins` (e.g. `"http://localhost:3000"`). Without `registry`, finished runs
    are kept for reattaching `keep_finished` seconds, at most `max_finished` of them;
    `app.state.runs` is the registry (`runs()` lists them, `purge()` forgets them).
    """
    runs = (
        registry
        if registry is not None
        else RunRegistry(keep_finished=keep_finished, max_finished=max_finished)
    )
    api = _Api(agent, runs, max_body_size, keep_alive, Checkpoints(runs, store))
    api.deps = deps
    api.durable = durable
    routes = [
        Route("/", page_file),
        Route("/static/{name}", page_file),
        Route("/favicon.ico", no_content),
        Route("/api/chat", api.chat, methods=["POST"]),
        Route("/api/chat/{key}/stream", api.reattach_ui),
        Route("/api/chat/{key}/stop", api.stop, methods=["POST"]),
        Route("/api/events", api.events, methods=["POST"]),
        Route("/api/events/{key}", api.reattach_events),
        Route("/api/events/{key}/stop", api.stop, methods=["POST"]),
        Route("/api/chat/{key}/cancel", api.cancel_call, methods=["POST"]),
        Route("/api/events/{key}/cancel", api.cancel_call, methods=["POST"]),
        Route("/api/chat/{key}/steer", api.steer, methods=["POST"]),
        Route("/api/events/{key}/steer", api.steer, methods=["POST"]),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Any]] = {
        _BadRequest: _bad_request,
        MessageError: _bad_request,
        RegistryFull: _bad_request,
        NotHolder: _bad_request,
        AgentStreamError: _bad_request,
    }
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.add_middleware(Guard, hosts=allowed_hosts, origins=allowed_origins, token=token)
    app.state.runs = runs
    return app


class _Api:
    """The API's endpoints, over one registry of runs."""

    def __init__(
        self,
        agent: Agent | Callable[[], Agent],
        runs: RunRegistry,
        max_body_size: int,
        keep_alive: float,
        checkpoints: Checkpoints,
    ) -> None:
        self.agent = agent
        self.runs = runs
        self.checkpoints = checkpoints
        self.max_body_size = max_body_size
        self.keep_alive = keep_alive
        self.deps: Callable[[Request], Any] | None = None
        self.durable: DurableRuns | None = None

    def make_agent(self) -> Agent:
        return self.agent if isinstance(self.agent, Agent) else self.agent()

    async def deps_of(self, request: Request) -> Any:
        """The run's `deps` for this request (None without a `deps` function)."""
        if self.deps is None:
            return None
        made = self.deps(request)
        return await made if inspect.isawaitable(made) else made

    def start(self, messages: list[dict[str, Any]], deps: Any = None) -> AgentRun:
        return self.make_agent().stream(messages, deps=deps)

    async def chat(self, request: Request) -> Response:
        body = await _json_body(request, self.max_body_size)
        messages = to_openai(body.get("messages"))  # also checks the messages' shape
        ui_messages: list[Any] = body["messages"]
        given = body.get("id")
        if given is not None and not valid_key(given):
            raise _BadRequest(400, "the chat id must be 1 to 128 letters, digits or _-.:~")
        chat_id: str | None = given
        secret = _secret(request)
        held = None if chat_id is None else self.runs.get(chat_id)
        if held is not None and not held.held_by(secret):
            raise NotHolder("this chat's run was started by another client")
        if chat_id is not None:
            # UI messages hold no reasoning fields nor signatures: the server kept them.
            messages = restore_wire(messages, await self.checkpoints.wire(chat_id))
        decisions = approvals_of(ui_messages)
        if self.durable is not None:
            deps = await self.deps_of(request)  # plain data: it goes with the workflow
            return await self._durable_chat(
                self.durable, chat_id, messages, decisions, secret, deps
            )
        message_id = None
        if decisions:
            paused = await self._paused(chat_id, decisions)
            assert chat_id is not None  # `_paused` found the chat's run
            if not await self.checkpoints.claim(chat_id, paused):
                raise _BadRequest(409, "this chat's run was already resumed by another decision")
            run = self.make_agent().resume_stream(
                paused.state, approvals=decisions, deps=await self.deps_of(request)
            )
            message_id = last_assistant_id(ui_messages) or paused.message_id
        else:
            run = self.start(messages, await self.deps_of(request))
        if chat_id is not None:
            await self.checkpoints.forget(chat_id)
        live = self.runs.add(chat_id, secret)
        headers = {"x-agentstream-run": live.key}
        save = self._saver(chat_id)
        return _RunStream(live, run, "ui", self.keep_alive, headers, message_id, save, self.runs)

    async def _durable_chat(
        self,
        durable: DurableRuns,
        chat_id: str | None,
        messages: list[dict[str, Any]],
        decisions: Mapping[str, object],
        secret: str | None,
        deps: Any = None,
    ) -> Response:
        if decisions:
            run_id = None if chat_id is None else await self._durable_held(durable, chat_id, secret)
            if run_id is None:
                raise _BadRequest(409, "this chat has no run waiting for approval")
            for call_id, decision in decisions.items():
                approval = decision if isinstance(decision, Approval) else Approval(bool(decision))
                await durable.approve(run_id, call_id, approval.approved, approval.reason)
            headers = {"x-agentstream-run": chat_id or ""}
            resume = frozenset(decisions)
            return DurableStream(durable, run_id, "ui", -1, self.keep_alive, headers, resume)
        chat_id = chat_id or "chat_" + secrets.token_hex(8)
        await self._durable_held(durable, chat_id, secret)
        messages = await durable_wire(durable, chat_id, messages)  # reasoning, signatures
        run_id = await durable.start_chat(chat_id, messages, holder_of(secret), deps)
        headers = {"x-agentstream-run": chat_id}
        return DurableStream(durable, run_id, "ui", -1, self.keep_alive, headers)

    async def _durable_held(self, durable: DurableRuns, key: str, secret: str | None) -> str | None:
        """The run of chat `key`, if it has one; `NotHolder` if the client does not hold it."""
        found = await durable.chat_run(key) if valid_key(key) else None
        if found is None:
            return None
        run_id, holder = found
        if not held_by(holder, secret):
            raise NotHolder("this chat's run was started by another client")
        return run_id

    def _durable_key(self, durable: DurableRuns, request: Request) -> Any:
        return lambda key: self._durable_held(durable, key, _secret(request))

    async def _paused(self, chat_id: str | None, decisions: Mapping[str, object]) -> Paused:
        """The chat's paused run, which must be waiting for each decided call."""
        paused = None if chat_id is None else await self.checkpoints.find(chat_id)
        if paused is None:
            raise _BadRequest(
                409, "this chat has no run waiting for approval (it ended, or expired)"
            )
        pending = RunState.from_json(paused.state).pending
        waiting = (
            {c.id for c in pending.calls if c.status == "awaiting_approval"} if pending else set()
        )
        unknown = sorted(set(decisions) - waiting)
        if unknown:
            raise _BadRequest(409, f"no call of this chat waits for approval as {unknown[0]!r:.60}")
        return paused

    def _saver(self, chat_id: str | None) -> Callable[[LiveRun], Awaitable[None]] | None:
        if chat_id is None:
            return None
        checkpoints = self.checkpoints

        async def save(live: LiveRun) -> None:
            if live.wire:
                await checkpoints.save_wire(chat_id, live.wire)
            if live.paused is not None:
                await checkpoints.save(chat_id, Paused(live.paused, live.message_id))

        return save

    async def events(self, request: Request) -> Response:
        body = await _json_body(request, self.max_body_size)
        prompt = body.get("prompt")
        if isinstance(prompt, str) and prompt:
            messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        elif isinstance(body.get("messages"), list) and body["messages"]:
            messages = body["messages"]
        else:
            raise _BadRequest(400, "send a 'prompt' text or a list of OpenAI 'messages'")
        if self.durable is not None:
            chat_id = "run_" + secrets.token_hex(8)
            deps = await self.deps_of(request)
            run_id = await self.durable.start_chat(
                chat_id, messages, holder_of(_secret(request)), deps
            )
            headers = {"x-agentstream-run": chat_id}
            return DurableStream(self.durable, run_id, "events", -1, self.keep_alive, headers)
        run = self.start(messages, await self.deps_of(request))
        live = self.runs.add(run.run_id, _secret(request))
        headers = {"x-agentstream-run": live.key}
        return _RunStream(live, run, "events", self.keep_alive, headers, runs=self.runs)

    async def reattach_ui(self, request: Request) -> Response:
        if self.durable is not None:
            return await self._durable_reattach(self.durable, request, "ui")
        return self._reattach(request, "ui")

    async def reattach_events(self, request: Request) -> Response:
        if self.durable is not None:
            return await self._durable_reattach(self.durable, request, "events")
        return self._reattach(request, "events")

    async def _durable_reattach(
        self, durable: DurableRuns, request: Request, kind: str
    ) -> Response:
        run_id = await self._durable_held(durable, request.path_params["key"], _secret(request))
        if run_id is None:
            return Response(status_code=204)
        after = _last_event_id(request.headers.get("last-event-id"))
        return DurableStream(durable, run_id, kind, after, self.keep_alive)

    def _reattach(self, request: Request, kind: str) -> Response:
        live = self._held(request)
        if live is None:
            return Response(status_code=204)  # what the AI SDK expects: no run to resume
        after = _last_event_id(request.headers.get("last-event-id"))
        return _Follow(live, kind, after, self.keep_alive)

    async def stop(self, request: Request) -> Response:
        if self.durable is not None:
            key = request.path_params["key"]
            run_id = await self._durable_held(self.durable, key, _secret(request))
            if run_id is None:
                return JSONResponse({"error": "no such run"}, status_code=404)
            await self.durable.cancel(run_id)
            return Response(status_code=204)
        live = self._held(request)
        if live is None:
            return JSONResponse({"error": "no such run"}, status_code=404)
        live.stop("stopped by the user")
        return Response(status_code=204)

    async def cancel_call(self, request: Request) -> Response:
        if self.durable is not None:  # the run may be on another server: see the module
            body = await _json_body(request, self.max_body_size)
            held = self._durable_key(self.durable, request)
            return await durable_cancel_call(self.durable, held, request.path_params["key"], body)
        live = self._held(request)
        body = await _json_body(request, self.max_body_size)
        if live is None:
            return JSONResponse({"error": "no such run"}, status_code=404)
        call_id, reason = body.get("toolCallId"), body.get("reason")
        if not isinstance(call_id, str) or not 0 < len(call_id) <= _MAX_CALL_ID:
            raise _BadRequest(400, f"toolCallId must be a string of 1 to {_MAX_CALL_ID} characters")
        if reason is not None and (not isinstance(reason, str) or len(reason) > _MAX_REASON):
            raise _BadRequest(400, f"reason must be null or at most {_MAX_REASON} characters")
        try:
            live.cancel_call(call_id, reason or None)
        except CallNotRunning:
            return JSONResponse({"error": "no such tool call is running"}, status_code=409)
        return Response(status_code=204)

    async def steer(self, request: Request) -> Response:
        """A user message for the run in progress, delivered at its next step boundary."""
        body = await _json_body(request, self.max_body_size)
        text = body.get("text")
        if self.durable is not None:
            held = self._durable_key(self.durable, request)
            return await durable_steer(self.durable, held, request.path_params["key"], text)
        if not isinstance(text, str) or not text.strip():
            raise _BadRequest(400, "send the message as {'text': '...'}")
        live = self._held(request)
        if live is None:
            return JSONResponse({"error": "no such run"}, status_code=404)
        if live.run is None or live.finished:
            raise _BadRequest(409, "this run is not in progress: send a new message instead")
        try:
            message_id = live.run.send(text)
        except SetupError:
            raise _BadRequest(409, "this run has ended or paused: send a new message") from None
        return JSONResponse({"id": message_id})

    def _held(self, request: Request) -> LiveRun | None:
        """The run named in the path; `NotHolder` if the client does not hold it."""
        key = request.path_params["key"]
        live = self.runs.get(key) if valid_key(key) else None
        if live is not None and not live.held_by(_secret(request)):
            raise NotHolder("this run was started by another client")
        return live


def _secret(request: Request) -> str | None:
    """The client's holder secret for its chat, if it sent one."""
    secret = request.headers.get(_SECRET_HEADER)
    if secret is not None and not 0 < len(secret) <= _MAX_SECRET:
        raise _BadRequest(400, f"{_SECRET_HEADER} must be 1 to {_MAX_SECRET} characters")
    return secret


async def _bad_request(request: Request, exc: Exception) -> Response:
    status = exc.status if isinstance(exc, _BadRequest) else 400
    if isinstance(exc, RegistryFull):
        status = 503
    elif isinstance(exc, NotHolder):
        status = 403
    logger.info("%s %s refused: %s", request.method, request.url.path, exc)
    return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=status)


async def _json_body(request: Request, limit: int) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BadRequest(413, f"the request body is over {limit} bytes")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise _BadRequest(413, f"the request body is over {limit} bytes")
    try:
        # pydantic-core's reader: no recursion, refused past 200 levels (the core's
        # own JSON depth limit), and no lone surrogate that could not be sent on.
        data = from_json(bytes(body))
    except ValueError:
        raise _BadRequest(400, "the request body is not JSON (or is nested too deep)") from None
    if not isinstance(data, dict):
        raise _BadRequest(400, "the request body must be a JSON object")
    return data


def _last_event_id(value: str | None) -> int:
    if value is None:
        return -1
    try:
        return int(value.strip())
    except ValueError:
        return -1


def _frame(frame: Frame | None) -> bytes:
    if frame is None:
        return b": keep-alive\n\n"
    return f"id: {frame.number}\ndata: {frame.data}\n\n".encode()


class _Follow(Response):
    """The frames of a kept run after a given number, until it has finished."""

    def __init__(self, live: LiveRun, kind: str, after: int, keep_alive: float) -> None:
        self.live, self.kind, self.after, self.keep_alive = live, kind, after, keep_alive
        self.status_code = 200
        self.background = None
        headers = UI_STREAM_HEADERS if kind == "ui" else _SSE_HEADERS
        self.init_headers({**headers, "content-type": "text/event-stream"})

    def frames(self) -> AsyncGenerator[Frame | None, None]:
        live = self.live
        buffer = live.ui if self.kind == "ui" else live.events
        return live.follow(buffer, self.after, self.keep_alive)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await self.write(receive, send)

    async def write(self, receive: Receive, send: Send) -> None:
        """Send the frames until the run has finished or the client has gone."""
        async with anyio.create_task_group() as group:

            async def leave_on_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            group.start_soon(leave_on_disconnect)
            async with aclosing(self.frames()) as frames:
                async for frame in frames:
                    await send(_body(_frame(frame)))
            await send(_body(b"", more=False))
            group.cancel_scope.cancel()


class _RunStream(_Follow):
    """A new run: drives it into the registry while following it like any reader."""

    def __init__(
        self,
        live: LiveRun,
        run: AgentRun,
        kind: str,
        keep_alive: float,
        extra: dict[str, str],
        message_id: str | None = None,
        on_paused: Callable[[LiveRun], Awaitable[None]] | None = None,
        runs: RunRegistry | None = None,
    ) -> None:
        super().__init__(live, kind, -1, keep_alive)
        self.runs = runs
        self.run = run
        self.message_id = message_id
        self.on_paused = on_paused
        self.headers.update(extra)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        except BaseException:
            if self.runs is not None:  # never begun: the registry must not keep it
                self.runs.discard(self.live)
            raise
        # The run outlives this response: after a disconnect it goes on for the
        # registry's grace period, so that a reload can reattach to it.
        written = anyio.Event()

        async def write() -> None:
            try:
                await self.write(receive, send)
            except Exception as exc:  # a server that raises on a closed connection
                logger.debug("run %s: client connection lost: %r", self.live.key, exc)
            finally:
                written.set()

        async with anyio.create_task_group() as group:
            group.start_soon(write)
            group.start_soon(self.live.watch_readers)
            await self.live.drive(self.run, self.message_id, self.on_paused)
            await written.wait()
            group.cancel_scope.cancel()


def _body(data: bytes, *, more: bool = True) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}
