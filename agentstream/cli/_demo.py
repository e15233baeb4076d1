"""The demo behind `python -m agentstream`: chat with an agent and watch it stream.

Each turn runs in its own event loop (`anyio.run`), with a client made for it by the
agent's client factory; between turns no loop runs, so the prompt is a plain `input()`
in the main thread. Ctrl-C there raises `KeyboardInterrupt` as usual, and nothing is
left behind in a worker thread that would keep the process from exiting.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import sys
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, TextIO

import anyio
import openai

from .._agent import Agent
from .._exceptions import AgentStreamError, ModelError, SetupError
from ..state._state import RunState
from ..state._store import Session
from ._render import EventSink

__all__ = ["Connection", "connect", "listen", "run_demo", "serve"]

_DEFAULT_MODEL = "gpt-4o-mini"
_NO_KEY = "unused"  # servers reached by base URL alone (a local one) ignore the key
_TICK = 0.1


@dataclass(frozen=True, slots=True)
class Connection:
    """Where the demo sends its requests; the key never shows in the repr."""

    model: str
    base_url: str | None
    api_key: str | None = field(repr=False)
    max_retries: int = 2
    ttft: float = 0.0
    tokens_per_second: float | None = None

    @property
    def offline(self) -> bool:
        """Whether the in-process offline demo model answers (no key and no base URL)."""
        return self.api_key is None and self.base_url is None

    def client_factory(self) -> Callable[[], openai.AsyncOpenAI]:
        """A function making a client for each turn (the agent closes it after the turn)."""
        if self.offline:
            from ..testing import offline_model

            model = offline_model(ttft=self.ttft, tokens_per_second=self.tokens_per_second)
            return model.async_client
        return functools.partial(
            openai.AsyncOpenAI,
            api_key=self.api_key or _NO_KEY,
            base_url=self.base_url,
            max_retries=self.max_retries,
        )

    def redact(self, text: str) -> str:
        """`text` with the API key blanked out, should a server have echoed it."""
        key = self.api_key
        return text.replace(key, "***") if key and len(key) >= 6 else text

    def describe(self) -> str:
        """One line saying what answers, for the banner."""
        if self.offline:
            return "offline demo model (no network, no API key)"
        return f"model {self.model} at {self.base_url or 'https://api.openai.com/v1'}"


def connect(
    *,
    model: str | None,
    base_url: str | None,
    api_key: str | None,
    environ: Mapping[str, str],
    max_retries: int = 2,
    ttft: float = 0.0,
    tokens_per_second: float | None = None,
) -> Connection:
    """Settle the connection from flags, then the `openai` SDK's environment variables."""
    api_key = api_key or environ.get("OPENAI_API_KEY") or None
    base_url = base_url or environ.get("OPENAI_BASE_URL") or None
    if base_url is not None:
        _check_base_url(base_url)
    if not model:
        if api_key is None and base_url is None:
            from ..testing import OFFLINE_MODEL_NAME

            model = OFFLINE_MODEL_NAME
        else:
            model = environ.get("OPENAI_MODEL") or _DEFAULT_MODEL
    return Connection(model, base_url, api_key, max_retries, ttft, tokens_per_second)


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on `host:port` (0 picks a port); `SetupError` if it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise SetupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _check_base_url(url: str) -> None:
    """A base URL that cannot work is bad setup, said at once rather than retried."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise SetupError(
            f"--base-url / OPENAI_BASE_URL must be an http(s) URL such as "
            f"http://127.0.0.1:8000/v1, not {url[:100]!r}"
        )


def banner(connection: Connection, tools: Sequence[str], *, chat: bool) -> str:
    """What the demo says before it starts; `tools` names every tool, MCP ones included."""
    lines = [f"agentstream demo: {connection.describe()}", f"tools: {', '.join(tools) or 'none'}"]
    if connection.offline:
        lines.append(
            "For a real provider set OPENAI_API_KEY (and OPENAI_MODEL or OPENAI_BASE_URL),\n"
            "or pass --api-key, --base-url and --model; see --help."
        )
    if chat:
        lines.append("Type a message. An empty line or Ctrl-D quits; Ctrl-C stops a turn.")
    return "\n".join(lines)


def run_demo(
    agent: Agent,
    connection: Connection,
    sink: EventSink,
    *,
    prompt: str | None,
    live: bool,
    stdout: TextIO,
    stderr: TextIO,
    session: Session | None = None,
    resume: bool = False,
    forget: bool = False,
    servers: Sequence[AbstractAsyncContextManager[Any]] = (),
) -> int:
    """One turn for `prompt`, or a chat on standard input; return the exit status.

    With `session` each turn continues the conversation kept there (across
    invocations); with `resume`, the session's unfinished run is continued first (an
    error if there is none); with `forget`, it is dropped first.
    `servers` (MCP connections) are entered around each turn, in the turn's event loop.
    """
    turn = functools.partial(
        _turn, agent, sink, connection, live=live, stderr=stderr, session=session,
        servers=servers,
    )  # fmt: skip
    if forget and session is not None:
        stderr.write(anyio.run(forget_unfinished, session) + "\n")
    if resume:
        status = anyio.run(turn, None).status
        if status != 0:
            return status
    if prompt is not None:
        return anyio.run(turn, [{"role": "user", "content": prompt}]).status
    interactive = sys.stdin.isatty()
    if interactive:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
    history: list[dict[str, Any]] = []
    while True:
        try:
            line = input("you> ")
        except EOFError:
            stdout.write("\n")
            return 0
        except KeyboardInterrupt:
            stdout.write("\n")
            return 130
        if not interactive:  # make a piped transcript read like a typed one
            stdout.write(line + "\n")
        if not line.strip():
            return 0
        said = {"role": "user", "content": line}
        outcome = anyio.run(turn, [said] if session else [*history, said])
        if outcome.status == 141:
            return 141
        if outcome.messages is not None:
            history = outcome.messages
        stdout.write("\n")


@dataclass(slots=True)
class _Outcome:
    status: int = 0
    messages: list[dict[str, Any]] | None = None
    """The conversation after the turn, if it finished (a stopped turn is forgotten)."""


async def _turn(
    agent: Agent,
    sink: EventSink,
    connection: Connection,
    conversation: list[dict[str, Any]] | None,
    *,
    live: bool,
    stderr: TextIO,
    session: Session | None = None,
    servers: Sequence[AbstractAsyncContextManager[Any]] = (),
) -> _Outcome:
    """One run: the conversation given, continued in `session`, or (None) resumed."""
    outcome = _Outcome()
    async with anyio.create_task_group() as tasks:
        with anyio.CancelScope() as scope:
            tasks.start_soon(_watch_interrupts, scope, stderr)
            if live:
                tasks.start_soon(_tick, sink)
            try:
                # Leaving this block, even by cancellation, closes the HTTP stream and
                # cancels the tools still running.
                if session is not None:
                    await check_session(session, resume=conversation is None)
                async with _entered(servers):
                    if conversation is None:
                        run = agent.resume_stream(session=session)
                    else:
                        run = agent.stream(conversation, session=session)
                    async with run:
                        async for event in run:
                            sink.handle(event)
                outcome.messages = run.result.to_messages()
                sink.finish()
                if run.result.stop_reason == "approval_required" and session is not None:
                    stderr.write("(the run is paused; continue it with --session ... --resume)\n")
            except BrokenPipeError:
                outcome.status = 141  # the reader of our output has gone: stop quietly
            except AgentStreamError as exc:
                sink.finish()
                stderr.write(f"error: {connection.redact(describe_error(exc, connection))}\n")
                stderr.flush()
                outcome.status = 2 if isinstance(exc, SetupError) else 1
        if scope.cancelled_caught:
            sink.interrupted()
            stderr.write("interrupted\n")
            stderr.flush()
            outcome.status = 130
        tasks.cancel_scope.cancel()
    return outcome


def _where(session: Session) -> str:
    return f"the session in {getattr(session.store, 'path', session.id)}"


async def check_session(session: Session, *, resume: bool) -> None:
    """Refuse, with the command line's advice, a turn the session's state does not allow."""
    saved = await session.state()
    unfinished = saved is not None and not saved.finished
    if resume and not unfinished:
        raise SetupError(
            f"--resume: {_where(session)} has no unfinished run to continue "
            "(leave out --resume to start a new turn)"
        )
    if not resume and saved is not None and unfinished:
        why = saved.stop_reason or "cut short"
        raise SetupError(
            f"{_where(session)} has an unfinished run (step {saved.step}, {why}): "
            "add --resume to continue it, or --forget to drop it"
        )


async def forget_unfinished(session: Session) -> str:
    """Drop the session's unfinished run, keeping the conversation before it; a note."""
    saved = await session.state()
    if saved is None or saved.finished:
        return f"--forget: {_where(session)} has no unfinished run; nothing to forget"
    kept = saved.messages[: saved.first_new]
    while kept and kept[-1].get("role") == "user":
        kept.pop()  # the prompt of the dropped run goes with it
    forgotten = RunState.start(saved.run_id, kept)
    forgotten.stop_reason = "forgotten"
    await session.save(forgotten)
    return f"forgot the unfinished run of {_where(session)} (it stood at step {saved.step})"


@contextlib.asynccontextmanager
async def _entered(contexts: Sequence[AbstractAsyncContextManager[Any]]) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for context in contexts:
            await stack.enter_async_context(context)
        yield


async def _watch_interrupts(scope: anyio.CancelScope, stderr: TextIO) -> None:
    """Ctrl-C stops the turn; a second one, while the turn winds down, ends the process."""
    with contextlib.ExitStack() as stack:
        try:
            signals = stack.enter_context(anyio.open_signal_receiver(signal.SIGINT))
        except (NotImplementedError, ValueError, RuntimeError):
            return  # no signal handling here (Windows, or not the main thread)
        async for _ in signals:
            if scope.cancel_called:
                # A sync tool in a worker thread cannot be cancelled, and the turn waits
                # for it; the user has asked twice, so leave without waiting.
                stderr.write("\nerror: interrupted twice; exiting\n")
                stderr.flush()
                sys.stdout.flush()
                os._exit(130)
            scope.cancel()


async def _tick(sink: EventSink) -> None:
    while True:
        await anyio.sleep(_TICK)
        sink.tick()


def describe_error(exc: AgentStreamError, connection: Connection) -> str:
    """One line for an error, with a hint where the fix is usually the same."""
    message = str(exc)
    if isinstance(exc, ModelError):
        detail = exc.body.get("message") if isinstance(exc.body, Mapping) else None
        if exc.status_code is not None and isinstance(detail, str) and detail:
            message = f"the server answered {exc.status_code}: {detail}"
        if exc.status_code == 401:
            message += " (check --api-key or OPENAI_API_KEY)"
        elif exc.status_code == 404:
            message += f" (is the model {connection.model!r} served there? see --model)"
        elif exc.status_code is None and not connection.offline:
            message += f" ({connection.describe()})"
    first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    return first if len(first) <= 400 else first[:400] + "..."


async def serve(
    *, host: str, port: int, ttft: float, tokens_per_second: float | None, out: TextIO
) -> None:
    """Serve the offline model over HTTP until Ctrl-C (or SIGTERM)."""
    from ..testing import OFFLINE_MODEL_NAME, serve_model

    failed: OSError | None = None
    async with anyio.create_task_group() as tasks:
        try:
            started = await tasks.start(
                functools.partial(
                    serve_model,
                    host=host,
                    port=port,
                    ttft=ttft,
                    tokens_per_second=tokens_per_second,
                )
            )
        except OSError as exc:  # raised here rather than in the group: no exception group
            failed = exc
        else:
            bound = started if isinstance(started, int) else port
            shown = f"[{host}]" if ":" in host else host
            url = f"http://{shown}:{bound}/v1"
            out.write(
                f"Serving the offline demo model at {url} (Ctrl-C stops it).\n"
                f"Use it from any OpenAI client with OPENAI_BASE_URL={url}, for example:\n"
                f"  OPENAI_BASE_URL={url} OPENAI_MODEL={OFFLINE_MODEL_NAME} python -m agentstream\n"
            )
            out.flush()
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            tasks.cancel_scope.cancel()
    if failed is not None:
        raise failed
