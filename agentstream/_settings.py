"""Checking what an `Agent` is given, and making a run's first conversation.

Every mistake is a `SetupError` that says what fits, and names people bring from other
agent libraries get a pointer to ours.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import openai

from ._exceptions import SetupError
from .loop._config import Api
from .loop._guardrails import Guardrail, InputGuardrail, OutputGuardrail
from .loop._limits import UsageLimits
from .loop._prices import PriceTable
from .loop._retries import Retries
from .loop._timeouts import Timeouts
from .state._store import Session
from .tools._tool import Tool
from .wire.chat._stream import check_fields
from .wire.responses._stream import check_responses_fields

__all__ = [
    "RUN_OPTIONS",
    "check_count",
    "check_guardrails",
    "check_request",
    "check_run_options",
    "check_session",
    "check_settings",
    "check_watchers",
    "client_from_environment",
    "conversation",
]

Prompt = str | Sequence[Mapping[str, Any]]


# Request fields the loop owns; anything else passes through to the server untouched.
_OWNED = frozenset({"messages", "model", "stream", "tools"})

_OWNED_RESPONSES = frozenset({"input", "instructions", "model", "stream", "tools"})

_USE_INSTRUCTIONS = "use instructions='...' (sent as the system message)"

_USE_MAX_STEPS = "use max_steps=... (the number of requests a run may make)"

_USE_OUTPUT_TYPE = "use output_type=... (a Pydantic model, a dataclass, a TypedDict, ...)"

# Names people bring from other agent libraries (the OpenAI Agents SDK, Pydantic AI,
# LangChain, LlamaIndex), with what to use here instead.
_FOREIGN_NAMES: dict[str, str] = {
    "system_prompt": _USE_INSTRUCTIONS,
    "system": _USE_INSTRUCTIONS,
    "system_message": _USE_INSTRUCTIONS,
    "prompt": _USE_INSTRUCTIONS + "; the prompt itself goes to run(...)",
    "state_modifier": _USE_INSTRUCTIONS,
    "max_turns": _USE_MAX_STEPS,
    "max_iterations": _USE_MAX_STEPS,
    "max_function_calls": "use max_tool_calls=... (tool calls per run)",
    "max_function_tool_concurrency": "use max_concurrent_tools=... (tool calls run at once)",
    "max_retries": "use retries=Retries(max_retries=...)",
    "result_type": _USE_OUTPUT_TYPE,
    "response_model": _USE_OUTPUT_TYPE,
    "model_settings": "pass the settings themselves as keyword arguments (temperature=...)",
    "deps": "deps belong to each run: agent.run(prompt, deps=...), read as ctx.deps in a tool",
    "deps_type": "annotate the tool's parameter ToolContext[YourDeps] and pass deps=... to run()",
    "name": "an Agent has no name; leave it out",
    "handoffs": "agentstream has no handoffs; call another agent from a tool",
    "verbose": "iterate agent.stream(...) for events, or use python -m agentstream",
    "llm": "use client=AsyncOpenAI(...) and model='...'",
    "usage_limits": "use limits=UsageLimits(...)",
    "fallback_models": "use fallback=['other-model', (other_client, 'model'), ...]",
    "fallbacks": "use fallback=['other-model', (other_client, 'model'), ...]",
}


def client_from_environment() -> Callable[[], openai.AsyncOpenAI]:
    """The client factory of an `Agent` given no client: `AsyncOpenAI()` from the environment.

    A factory, not an instance: each run gets its own client (closed after the run),
    so the agent works from any event loop, and `run_sync` any number of times.
    """
    if not os.environ.get("OPENAI_API_KEY") and not os.environ.get("OPENAI_BASE_URL"):
        raise SetupError(
            "Agent(model=...) without client= makes an openai.AsyncOpenAI from the "
            "environment, and neither OPENAI_API_KEY nor OPENAI_BASE_URL is set: set one "
            "(OPENAI_BASE_URL=http://127.0.0.1:8000/v1 for a local server), or pass "
            "client=AsyncOpenAI(...)"
        )
    return _environment_client


def _environment_client() -> openai.AsyncOpenAI:
    # A local server reached by base URL alone ignores the key, which the SDK requires.
    return openai.AsyncOpenAI(api_key=os.environ.get("OPENAI_API_KEY") or "unused")


def check_settings(
    *,
    api: object,
    client: object,
    model: object,
    tools: object,
    instructions: object,
    timeouts: object,
    retries: object,
    counts: Mapping[str, tuple[object, int]],
) -> None:
    """Refuse `Agent` settings of the wrong kind, each with a message saying what fits."""
    if api not in ("chat", "responses"):
        raise SetupError(f"api must be 'chat' or 'responses', not {api!r:.60}")
    if not isinstance(client, openai.AsyncOpenAI) and not callable(client):
        raise SetupError("client must be an openai.AsyncOpenAI or a function returning one")
    if not isinstance(model, str) or not model:
        raise SetupError("model must be a non-empty string")
    for name, (value, minimum) in counts.items():
        # The step limit and the error budget must be given; the other limits may be off.
        if value is not None or name in ("max_steps", "max_invalid_calls"):
            check_count(name, value, minimum=minimum)
    if isinstance(tools, (Tool, str, bytes, Mapping)) or not isinstance(tools, Iterable):
        raise SetupError(f"tools takes a list of tools (tools=[my_tool]), not {tools!r:.50}")
    if instructions is not None and not isinstance(instructions, str):
        raise SetupError(f"instructions must be a string, not {instructions!r:.60}")
    if timeouts is not None and not isinstance(timeouts, Timeouts):
        raise SetupError(f"timeouts takes Timeouts(...), not {timeouts!r:.60}")
    if retries is not None and not isinstance(retries, Retries):
        raise SetupError(f"retries takes Retries(max_retries=...), not {retries!r:.60}")


def check_guardrails(guardrails: object, prepare_step: object) -> tuple[Guardrail, ...]:
    """The guardrails as a tuple, refused unless each is an Input- or `OutputGuardrail`
    with a name and a check; and `prepare_step` must be a function if given."""
    if prepare_step is not None and not callable(prepare_step):
        raise SetupError("prepare_step must be a function of a StepContext (sync or async)")
    if isinstance(guardrails, (str, bytes, Mapping)) or not isinstance(guardrails, Iterable):
        raise SetupError("guardrails takes a list of InputGuardrail and OutputGuardrail")
    given = tuple(guardrails)
    for guard in given:
        if not isinstance(guard, (InputGuardrail, OutputGuardrail)):
            raise SetupError(
                f"a guardrail must be InputGuardrail(name, check) or OutputGuardrail(name, "
                f"check), not {guard!r:.60}"
            )
        if not isinstance(guard.name, str) or not guard.name or not callable(guard.check):
            raise SetupError("a guardrail needs a name (a non-empty string) and a check function")
    return given


RUN_OPTIONS = ("deps", "limits", "max_concurrent_tools")
"""What `stream` takes per run besides request fields (`stream_sync` passes them on)."""


def check_run_options(limits: object, prices: PriceTable | None, max_concurrent: object) -> None:
    """Refuse usage limits of the wrong kind, a cost limit with nothing to price by, and
    a per-run tool cap that is not a positive integer (one call: it runs for every run)."""
    if max_concurrent is not None:
        check_count("max_concurrent_tools", max_concurrent, minimum=1)
    if limits is None:
        return
    if not isinstance(limits, UsageLimits):
        raise SetupError(f"limits takes UsageLimits(...), not {limits!r:.60}")
    if limits.cost is not None and prices is None:
        raise SetupError(
            "a cost limit needs prices: Agent(prices=Prices(input=..., output=...)), a "
            "mapping of model names to Prices, or agentstream.prices.GenaiPrices()"
        )


def check_count(name: str, value: object, *, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SetupError(f"{name} must be an integer >= {minimum}, not {value!r}")


def check_request(request: Mapping[str, Any], api: Api = "chat") -> None:
    for name, hint in _FOREIGN_NAMES.items():
        if name in request:
            raise SetupError(f"agentstream has no argument {name!r}: {hint}")
    if any(callable(item) for item in _items(request.get("functions"))):
        raise SetupError("functions= is the legacy request field; pass your tools as tools=[...]")
    owned = sorted((_OWNED_RESPONSES if api == "responses" else _OWNED).intersection(request))
    if owned:
        raise SetupError(f"agentstream sets these request fields itself: {', '.join(owned)}")
    refused = check_responses_fields(request) if api == "responses" else check_fields(request)
    if refused:
        raise SetupError(refused)


def check_session(session: object) -> None:
    if session is not None and not isinstance(session, Session):
        raise SetupError("session must be an agentstream.Session(store, id)")


def conversation(prompt: Prompt, instructions: str | None) -> list[dict[str, Any]]:
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


def _items(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else ()


def check_watchers(observers: Iterable[Any], approver: object) -> tuple[Any, ...]:
    """The observers as a tuple, each with an `observe(run)`; the approver a function."""
    given = tuple(observers)
    for observer in given:
        if not callable(getattr(observer, "observe", None)):
            raise SetupError(f"an observer needs an observe(run) method: {observer!r:.80}")
    if approver is not None and not callable(approver):
        raise SetupError("approver must be a function of an ApprovalRequest")
    return given
