"""`Agent`: a model, its tools and the rules of a run; `stream` starts an `AgentRun`."""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, get_args, overload

from typing_extensions import TypeVar

from ._exceptions import SetupError, StateError
from ._result import OutputT, RunResult
from ._settings import RUN_OPTIONS as _RUN_OPTIONS
from ._settings import Prompt
from ._settings import check_guardrails as _check_guardrails
from ._settings import check_request as _check_request
from ._settings import check_run_options as _check_run_options
from ._settings import check_session as _check_session
from ._settings import check_settings as _check_settings
from ._settings import check_watchers as _check_watchers
from ._settings import client_from_environment as _client_from_environment
from ._settings import conversation as _conversation
from .context._policy import ContextPolicy
from .context._policy import check_context as _check_context
from .loop._approval import check_approvals
from .loop._config import Api, ClientLike, OutputMemory, RunConfig, RunStart
from .loop._fallback import CircuitBreaker, FallbackLike, fallbacks
from .loop._guardrails import Guardrail
from .loop._limits import UsageLimits
from .loop._observe import Observer
from .loop._prices import PricesLike, price_table
from .loop._retries import Retries
from .loop._run import AgentRun
from .loop._step_shape import PrepareStep
from .loop._subrun import agent_tool
from .loop._sync import SyncHome, SyncRun, refuse_in_event_loop
from .loop._timeouts import Timeouts
from .loop._typed import TypedRun
from .output._spec import OutputMode, OutputSpec, output_spec
from .state._approvals import Approval, Approver
from .state._state import RunState
from .state._store import Session
from .tools._tool import Tool
from .tools._toolset import ToolCatalog, Toolset

__all__ = ["Agent", "AgentRun", "RunStart"]

_MODES = get_args(OutputMode)

# `Agent`'s keyword arguments kept under their own name (`replace` copies them).
_SETTINGS = (
    "model", "instructions", "max_steps", "final_answer", "max_invalid_calls",
    "max_tool_calls", "max_tool_calls_per_step", "max_argument_size", "max_result_size",
    "partial_arguments", "early_tools", "timeouts", "retries", "approver", "output_type",
    "output_mode", "observers", "api", "chain_responses", "background",
    "max_concurrent_tools", "context", "max_media_size", "prepare_step", "guardrails",
    "limits", "prices", "fallback", "breaker",
)  # fmt: skip

T = TypeVar("T")


class Agent(Generic[OutputT]):
    """A model, a set of tools and the rules for running them.

    `client` is an `openai.AsyncOpenAI` (or a function that makes one for each run, which
    the run then closes); without it, each run makes an `AsyncOpenAI()` from the
    environment (`OPENAI_API_KEY`, `OPENAI_BASE_URL`), and one of the two must be set.
    `tools` holds `Tool`s, plain functions (made tools with `tool()`)
    and `Toolset`s, whose current tools are read again at every step. Keyword arguments
    beyond the named ones (`temperature`, `tool_choice`, `max_tokens`, `extra_headers`,
    `extra_body`, ...) are sent with every request as they are; they are the arguments of
    `chat.completions.create`, and any other name is refused here (a field only your
    server knows goes in `extra_body`).

    Limits: `max_steps` bounds the requests of a run and `max_tool_calls` the tool
    calls it runs; with `final_answer=True` a run that reaches either makes one more
    request without tools so the user still gets an answer. Calls past
    `max_tool_calls_per_step` (64 unless set; None for no limit) in one response are
    not run and the model is told.
    `max_invalid_calls` is the run-wide budget of tool calls the model may get wrong
    before the run fails with `ErrorBudgetExceeded`. Arguments longer than
    `max_argument_size` characters are dropped as they stream and the call is refused;
    results longer than `max_result_size` are cut, with a note, before the model sees
    them. A tool may return images and files (`Image`, `File`); one over
    `max_media_size` bytes (5 MB unless set) is not sent and the model is told.
    `timeouts` bounds waiting; `retries` says when a failed step is tried again.
    `observers` watch each run from inside (`agentstream.otel.Tracing` makes traces).

    Typed output: with `output_type` (a Pydantic model, a dataclass, a `TypedDict`,
    `list[...]`, a union, a plain type) the run's `result.output` is that validated
    value and the agent is an `Agent[That]` (for a union, write `Agent[A | B](...)`).
    `output_mode` says how it is asked for: `"response_format"` (a strict JSON schema
    in the request), `"tool"` (a final-answer tool whose arguments are the answer, for
    servers that take tools but not `response_format`), or `"auto"`: `response_format`
    first, and the tool from then on if the server answers 400 naming
    `response_format`. An answer that is not JSON or does not fit goes back to the
    model and counts against `max_invalid_calls`.
    `early_tools=True` starts each call to a tool made with `early=True` as soon as the
    call is complete, while the response still streams (see the README).
    `max_concurrent_tools=N` lets at most N tool calls of a run run at once; the others
    wait in call order (`ToolQueued`). `AgentRun.cancel_call` cancels one call.

    `api="responses"` speaks the Responses API (`POST /responses`; typed output as
    `text.format`); `chain_responses=True` sends `previous_response_id` rather than the
    whole conversation; `background=True` runs each response in the background, so a
    stream cut mid-way is taken up again where it stopped (see docs/responses-api.md).
    `context=ContextPolicy(max_tokens=...)` keeps each request within a token budget
    (see docs/context.md).

    `prepare_step(ctx)` (sync or async) may change one step's request: its model, the
    tools offered, `tool_choice`, extra instructions (`StepOverrides`). `guardrails`
    check the input beside the first request and the final answer (`InputGuardrail`,
    `OutputGuardrail`); a tripped one ends the run with `stop_reason="guardrail"`
    (see docs/steering.md, also for `AgentRun.send`).
    """

    __slots__ = (
        "_catalog",
        "_client",
        "_output_memory",
        "_output_spec",
        "_price_table",
        "_sync",
        "api",
        "approver",
        "background",
        "breaker",
        "chain_responses",
        "context",
        "early_tools",
        "fallback",
        "final_answer",
        "guardrails",
        "instructions",
        "limits",
        "max_argument_size",
        "max_concurrent_tools",
        "max_invalid_calls",
        "max_media_size",
        "max_result_size",
        "max_steps",
        "max_tool_calls",
        "max_tool_calls_per_step",
        "model",
        "observers",
        "output_mode",
        "output_type",
        "partial_arguments",
        "prepare_step",
        "prices",
        "request",
        "retries",
        "timeouts",
    )

    def __init__(
        self,
        *,
        client: ClientLike | None = None,
        model: str,
        tools: Iterable[Tool | Toolset | Callable[..., Any]] = (),
        instructions: str | None = None,
        max_steps: int = 10,
        final_answer: bool = False,
        max_invalid_calls: int = 10,
        max_tool_calls: int | None = None,
        max_tool_calls_per_step: int | None = 64,
        max_argument_size: int | None = 1_000_000,
        max_result_size: int | None = 100_000,
        partial_arguments: bool = True,
        early_tools: bool = False,
        timeouts: Timeouts | None = None,
        retries: Retries | None = None,
        approver: Approver | None = None,
        observers: Iterable[Observer] = (),
        output_type: type[OutputT] | types.UnionType | None = None,
        output_mode: OutputMode = "auto",
        api: Api = "chat",
        chain_responses: bool = False,
        background: bool = False,
        max_concurrent_tools: int | None = None,
        context: ContextPolicy | None = None,
        max_media_size: int | None = 5_000_000,
        prepare_step: PrepareStep | None = None,
        guardrails: Iterable[Guardrail] = (),
        limits: UsageLimits | None = None,
        prices: PricesLike | None = None,
        fallback: Iterable[FallbackLike] | FallbackLike = (),
        breaker: CircuitBreaker | None = None,
        **request: Any,
    ) -> None:
        if client is None:
            client = _client_from_environment()
        _check_settings(
            api=api, client=client, model=model, tools=tools, instructions=instructions,
            timeouts=timeouts, retries=retries,
            counts={
                "max_steps": (max_steps, 1), "max_invalid_calls": (max_invalid_calls, 0),
                "max_tool_calls": (max_tool_calls, 1),
                "max_tool_calls_per_step": (max_tool_calls_per_step, 1),
                "max_argument_size": (max_argument_size, 1),
                "max_result_size": (max_result_size, 1),
                "max_concurrent_tools": (max_concurrent_tools, 1),
                "max_media_size": (max_media_size, 1),
            },
        )  # fmt: skip
        _check_request(request, api)
        self.api: Api = api
        self.chain_responses = bool(chain_responses)
        if background and api != "responses":
            raise SetupError("background=True is a Responses API mode: use api='responses'")
        self.background = bool(background)
        self.context = _check_context(context)
        if output_mode not in _MODES:
            raise SetupError(f"output_mode must be one of {', '.join(_MODES)}, not {output_mode!r}")
        self.output_type = output_type
        self.output_mode: OutputMode = output_mode
        self._output_spec = _output_spec(output_type, request)
        self._output_memory = OutputMemory()  # whether the server refused `response_format`
        self._client = client
        self.model = model
        self._catalog = ToolCatalog(tools)
        self.instructions = instructions
        self.max_steps = max_steps
        self.final_answer = final_answer
        self.max_invalid_calls = max_invalid_calls
        self.max_tool_calls = max_tool_calls
        self.max_tool_calls_per_step = max_tool_calls_per_step
        self.max_argument_size = max_argument_size
        self.max_result_size = max_result_size
        self.max_media_size = max_media_size
        self.partial_arguments = partial_arguments
        self.early_tools = early_tools
        self.max_concurrent_tools = max_concurrent_tools
        self.timeouts = timeouts or Timeouts()
        self.retries = retries or Retries()
        self.observers: tuple[Observer, ...] = _check_watchers(observers, approver)
        self.approver = approver
        self.request: dict[str, Any] = request
        self.guardrails = _check_guardrails(guardrails, prepare_step)
        self.prepare_step = prepare_step
        self._spending(limits, prices, fallback, breaker)
        self._sync = SyncHome(client)  # where run_sync and stream_sync run

    def _spending(
        self,
        limits: UsageLimits | None,
        prices: PricesLike | None,
        fallback: Iterable[FallbackLike] | FallbackLike,
        breaker: CircuitBreaker | None,
    ) -> None:
        """Usage limits, prices and fallback models (see docs/limits-and-fallback.md)."""
        self._price_table = price_table(prices)
        _check_run_options(limits, self._price_table, None)
        self.limits = limits
        self.prices = prices
        self.fallback = fallbacks(fallback)
        if self.fallback and self.chain_responses:
            raise SetupError(
                "fallback models cannot chain responses: each server knows only its own "
                "(leave chain_responses off)"
            )
        if breaker is not None and not isinstance(breaker, CircuitBreaker):
            raise SetupError(f"breaker takes CircuitBreaker(...), not {breaker!r:.60}")
        self.breaker = breaker if breaker is not None else CircuitBreaker()

    def __repr__(self) -> str:
        return f"Agent(model={self.model!r}, tools={list(self.tools)!r})"

    @property
    def client(self) -> ClientLike:
        """The client (or client factory) the agent was given."""
        return self._client

    def replace(self, **changes: Any) -> Agent[Any]:
        """A copy of this agent with some settings changed (`Agent`'s keyword arguments).

        `tools` replaces the whole list; request fields given here replace the agent's.
        """
        settings: dict[str, Any] = {name: getattr(self, name) for name in _SETTINGS}
        settings["client"] = self._client
        settings["tools"] = [*self._catalog.plain.values(), *self._catalog.toolsets]
        settings.update(self.request)
        return Agent(**{**settings, **changes})

    def as_tool(
        self,
        name: str | None = None,
        description: str | None = None,
        *,
        input_description: str | None = None,
    ) -> Tool:
        """A tool that runs this agent on the calling model's `input` text.

        Its result is the run's final output (the text, or the typed output as JSON).
        Inside another run, the inner run's events reach the outer stream as
        `SubRunEvent`s, its usage joins the outer usage, cancelling the outer run or the
        call cancels it, and an inner call needing approval goes to the outer approver,
        else pauses the outer run (docs/agents-as-tools.md). `name` defaults to "agent".
        """
        return agent_tool(
            self.stream, self.resume_stream, lambda: self.approver,
            name="agent" if name is None else name,
            description=(
                "Hand a task to another agent and get its final answer."
                if description is None else description
            ),
            input_description=input_description or "The task or question for the agent.",
        )  # fmt: skip

    @property
    def tools(self) -> dict[str, Tool]:
        """The tools offered now, by name: the plain ones, then each toolset's current ones.

        Read again at every step of a run, so a toolset's changes reach the next request.
        """
        return self._catalog.tools

    def _config(self) -> RunConfig:
        """The settings a run starting now works with (the loop never reads the agent)."""
        return RunConfig(
            client=self._client, model=self.model, api=self.api, request=self.request,
            catalog=self._catalog, max_steps=self.max_steps, final_answer=self.final_answer,
            max_invalid_calls=self.max_invalid_calls, max_tool_calls=self.max_tool_calls,
            max_tool_calls_per_step=self.max_tool_calls_per_step,
            max_argument_size=self.max_argument_size, max_result_size=self.max_result_size,
            partial_arguments=self.partial_arguments, early_tools=self.early_tools,
            timeouts=self.timeouts, retries=self.retries, approver=self.approver,
            observers=self.observers, chain_responses=self.chain_responses,
            background=self.background, output_memory=self._output_memory,
            max_concurrent_tools=self.max_concurrent_tools,
            context=self.context,
            max_media_size=self.max_media_size,
            prepare_step=self.prepare_step, guardrails=self.guardrails,
            limits=self.limits, prices=self._price_table, fallback=self.fallback,
            breaker=self.breaker,
        )  # fmt: skip

    @overload
    def stream(
        self, prompt: Prompt, *, output_type: None = None, **options: Any
    ) -> AgentRun[OutputT]: ...
    @overload
    def stream(self, prompt: Prompt, *, output_type: type[T], **options: Any) -> AgentRun[T]: ...
    @overload
    def stream(
        self, prompt: Prompt, *, output_type: types.UnionType, **options: Any
    ) -> AgentRun[Any]: ...
    def stream(
        self,
        prompt: Prompt,
        *,
        output_type: Any = None,
        session: Session | None = None,
        approver: Approver | None = None,
        deps: Any = None,
        limits: UsageLimits | None = None,
        max_concurrent_tools: int | None = None,
        **request: Any,
    ) -> AgentRun[Any]:
        """Start a run whose events you iterate: `async with agent.stream(p) as run:`.

        `prompt` is the user's text or a whole conversation of OpenAI message dicts.
        `output_type` overrides the agent's for this run.
        With `session`, the prompt continues the session's conversation and the run's
        state is saved there after every step and every tool call. `approver` decides
        on calls that need approval (else the agent's; with neither the run pauses).
        `deps` is handed to the tools as `ctx.deps` (a `ToolContext[YourDeps]`
        parameter): the user a request is for, a connection; it is not saved.
        `limits` and `max_concurrent_tools` replace the agent's for this run.
        Keyword arguments override the agent's request fields for this run.
        """
        if request:  # (the agent's own were checked when it was made)
            _check_request(request, self.api)
        _check_session(session)
        _check_run_options(limits, self._price_table, max_concurrent_tools)
        start = RunStart(
            messages=_conversation(prompt, self.instructions),
            added=_conversation(prompt, None) if session is not None else [],  # (for its store)
            session=session, approver=approver, deps=deps, limits=limits,
            max_concurrent_tools=max_concurrent_tools,
        )  # fmt: skip
        config = self._config()
        return AgentRun(config, start, request, self._typed(config, output_type, request))

    @overload
    async def run(
        self, prompt: Prompt, *, output_type: None = None, **options: Any
    ) -> RunResult[OutputT]: ...
    @overload
    async def run(
        self, prompt: Prompt, *, output_type: type[T], **options: Any
    ) -> RunResult[T]: ...
    @overload
    async def run(
        self, prompt: Prompt, *, output_type: types.UnionType, **options: Any
    ) -> RunResult[Any]: ...
    async def run(self, prompt: Prompt, *, output_type: Any = None, **options: Any) -> Any:
        """Run to the end (or to a pause for approval) and return the result.

        Takes what `stream` takes (`output_type`, `session`, `approver`, `deps`,
        `limits`, request fields).
        """
        async with self.stream(prompt, output_type=output_type, **options) as run:
            async for _ in run:
                pass
        return run.result

    def _typed(
        self, config: RunConfig, output_type: Any, request: Mapping[str, Any]
    ) -> TypedRun | None:
        """The typed-output side of a run, if it has an output type."""
        if output_type is not None and "response_format" in self.request:
            raise SetupError("give either output_type or response_format, not both")
        spec = self._output_spec if output_type is None else _output_spec(output_type, request)
        return TypedRun(config, spec, self.output_mode) if spec is not None else None

    def resume_stream(
        self,
        state: RunState | str | None = None,
        *,
        session: Session | None = None,
        approvals: Mapping[str, bool | Approval] | None = None,
        approver: Approver | None = None,
        deps: Any = None,
        limits: UsageLimits | None = None,
        max_concurrent_tools: int | None = None,
        **request: Any,
    ) -> AgentRun[OutputT]:
        """Continue a paused or interrupted run, streaming its events.

        Give the saved `state` (a `RunState` or its JSON), or the `session` that holds
        it. `approvals` decides calls waiting for approval, by call id (`True`, `False`
        or `Approval.deny("reason")`); calls left undecided go to the approver, or keep
        the run paused. `deps` is not saved with a run: give it again here, and
        `limits` too if the run had its own (they count what the whole run used).
        """
        _check_request(request, self.api)
        _check_session(session)
        _check_run_options(limits, self._price_table, max_concurrent_tools)
        decided = check_approvals(approvals)
        if (state is None) == (session is None):
            raise SetupError("resume takes a saved state or a session, one of the two")
        loaded: RunState | None = None
        if state is not None:
            loaded = RunState.from_json(state) if isinstance(state, (str, bytes)) else state
            if not isinstance(loaded, RunState):
                raise SetupError("state must be a RunState or its JSON")
            if loaded.finished:
                raise StateError("the run has finished: start a new run to continue")
            loaded.stop_reason = None
        start = RunStart(
            state=loaded, session=session, resume=True, approvals=decided, approver=approver,
            deps=deps, limits=limits, max_concurrent_tools=max_concurrent_tools,
        )  # fmt: skip
        config = self._config()
        return AgentRun(config, start, request, self._typed(config, None, request))

    async def resume(
        self,
        state: RunState | str | None = None,
        *,
        session: Session | None = None,
        approvals: Mapping[str, bool | Approval] | None = None,
        approver: Approver | None = None,
        deps: Any = None,
        **request: Any,
    ) -> RunResult[OutputT]:
        """Continue a paused or interrupted run to its end; see `resume_stream`."""
        async with self.resume_stream(
            state, session=session, approvals=approvals, approver=approver, deps=deps,
            **request,
        ) as run:  # fmt: skip
            async for _ in run:
                pass
        return run.result

    def stream_sync(self, prompt: Prompt, *, backend: str = "asyncio", **request: Any) -> SyncRun:
        """A run's events for synchronous code: `with agent.stream_sync(p) as run:`.

        The run goes on in a worker thread with its own event loop, one event ahead of
        the caller at most; leaving the block early cancels it. With a client instance,
        the runs share the loop of `run_sync` (see there).
        """
        _check_request({k: v for k, v in request.items() if k not in _RUN_OPTIONS})
        portal = self._sync.portal(backend)
        return SyncRun(functools.partial(self.stream, prompt, **request), backend, portal)

    @overload
    def run_sync(
        self, prompt: Prompt, *, output_type: None = None, **options: Any
    ) -> RunResult[OutputT]: ...
    @overload
    def run_sync(self, prompt: Prompt, *, output_type: type[T], **options: Any) -> RunResult[T]: ...
    @overload
    def run_sync(
        self, prompt: Prompt, *, output_type: types.UnionType, **options: Any
    ) -> RunResult[Any]: ...
    def run_sync(
        self, prompt: Prompt, *, backend: str = "asyncio", output_type: Any = None, **options: Any
    ) -> Any:
        """Run to the end from synchronous code, as many times as you like.

        Inside a running event loop (a notebook, an async function) use
        `await agent.run(...)` instead; this raises `SetupError` there. A client's
        connections belong to the event loop they were opened in: with a client
        instance, every call runs on one event loop kept for this agent in a daemon
        thread (so the instance's connections stay usable and are reused); with a client
        factory, each call starts and ends its own loop and client. Ctrl-C stops the run.
        """
        refuse_in_event_loop()
        run = functools.partial(self.run, prompt, output_type=output_type, **options)
        return self._sync.call(run, backend)

    def close_sync(self) -> None:
        """Close the client instance's connections kept open by `run_sync` / `stream_sync`.

        Optional (the process's end closes them too); the agent stays usable.
        """
        self._sync.close()


def _output_spec(output_type: Any, request: Mapping[str, Any]) -> OutputSpec | None:
    if output_type is None:
        return None
    if "response_format" in request:
        raise SetupError("give either output_type or response_format, not both")
    text = request.get("text")
    if isinstance(text, Mapping) and "format" in text:
        raise SetupError("give either output_type or text={'format': ...}, not both")
    return output_type if isinstance(output_type, OutputSpec) else output_spec(output_type)
