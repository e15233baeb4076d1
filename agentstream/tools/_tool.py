"""Tools: callables a model may call, with the JSON schema that describes them to it.

`tool()` reads a function's signature and docstring; `Tool.from_schema()` takes a
hand-written JSON schema. Either way the result is an immutable `Tool` that can describe
itself (`definition`), check a call's arguments (`validate()`) and run (`invoke()`).
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
import types
from collections.abc import Callable, Mapping
from typing import Annotated, Any, NoReturn, Union, get_args, get_origin, get_type_hints, overload

import anyio.to_thread
from pydantic import BaseModel

from .._convert import exception_text, tool_result_text
from .._exceptions import ToolArgumentsError, ToolCrashed, ToolDefinitionError
from ._context import ToolContext, handler_takes_context
from ._docstring import parse_docstring
from ._schema import (
    Check,
    model_arguments,
    parse_arguments,
    raw_arguments,
    signature_arguments,
    strict_arguments,
)

__all__ = ["Tool", "ToolContext", "format_tool_result", "tool"]

_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
ApprovalRule = bool | Callable[[dict[str, Any], "ToolContext"], Any]
"""`True` (every call needs a person's approval), or a function of the validated
arguments and the call's context, sync or async, that decides per call."""
_Bind = Callable[[dict[str, Any], "ToolContext"], tuple[tuple[Any, ...], dict[str, Any]]]


class Tool:
    """A callable a model may call, with the JSON schema that describes it.

    Made by `tool()` or `Tool.from_schema()`; immutable once made.
    """

    __slots__ = (
        "_bind",
        "_check",
        "_is_async",
        "concurrent",
        "description",
        "early",
        "function",
        "idempotent",
        "name",
        "needs_approval",
        "parameters",
        "strict",
    )

    name: str
    """The name the model calls the tool by."""
    description: str
    """What the tool does, for the model."""
    parameters: dict[str, Any]
    """The JSON schema of the arguments, as sent to the model."""
    strict: bool
    """Whether the schema is sent in OpenAI strict mode."""
    concurrent: bool
    """False: never runs alongside other tool calls of the same step."""
    function: Callable[..., Any]
    """The original callable (for `from_schema`, the handler)."""
    needs_approval: ApprovalRule
    """Whether a call waits for a person's approval before it runs (see `ApprovalRule`)."""
    idempotent: bool
    """True: running a call twice does no harm and gives the same result, so a call whose
    outcome was lost (the process stopped while it ran) may be run again when the run is
    resumed, and the result of an early call from a broken attempt at a step may be
    reused when the retry asks for the same call."""
    early: bool
    """True: may start as soon as its call is complete, before the model's response has
    ended, when the agent has `early_tools=True` (for read-only or idempotent tools)."""

    _check: Check
    _bind: _Bind
    _is_async: bool

    def __init__(
        self,
        *,
        name: str,
        description: str,
        parameters: dict[str, Any],
        strict: bool,
        concurrent: bool,
        function: Callable[..., Any],
        check: Check,
        bind: _Bind,
        needs_approval: ApprovalRule = False,
        idempotent: bool = False,
        early: bool = False,
    ) -> None:
        """Internal: use `tool()` or `Tool.from_schema()`."""
        _check_early(early, concurrent, f"tool {name!r}")
        if not isinstance(needs_approval, bool) and not callable(needs_approval):
            raise ToolDefinitionError(
                f"needs_approval of tool {name!r} must be a bool or a function of the "
                f"arguments and the context, not {needs_approval!r:.80}"
            )
        for slot, value in (
            ("needs_approval", needs_approval),
            ("idempotent", bool(idempotent)),
            ("early", bool(early)),
            ("name", name),
            ("description", description),
            ("parameters", parameters),
            ("strict", strict),
            ("concurrent", concurrent),
            ("function", function),
            ("_check", check),
            ("_bind", bind),
            ("_is_async", _is_async(function)),
        ):
            object.__setattr__(self, slot, value)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError(f"Tool is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"Tool is immutable; cannot delete {name!r}")

    def __copy__(self) -> Tool:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Tool:
        return self

    def __repr__(self) -> str:
        extra = "".join(f", {flag}=True" for flag in ("early", "idempotent") if getattr(self, flag))
        return (
            f"Tool(name={self.name!r}, strict={self.strict}, concurrent={self.concurrent}{extra})"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the original function directly, as if it had not been decorated."""
        return self.function(*args, **kwargs)

    @property
    def definition(self) -> dict[str, Any]:
        """The entry for the request's `tools` list, as JSON-ready data (a fresh copy).

        `json.dumps(my_tool.definition, indent=2)` shows what the model is told.
        """
        function: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "parameters": copy.deepcopy(self.parameters),
        }
        if self.strict:
            function["strict"] = True
        return {"type": "function", "function": function}

    def validate(self, arguments: str | Mapping[str, Any]) -> dict[str, Any]:
        """Parse and check a call's arguments; return what `invoke()` takes.

        Raises `ToolArgumentsError` with a short message written for the model, also
        when a validator of the tool's own types fails with any other exception; a
        validator raising `SystemExit` raises `ToolCrashed`.
        """
        try:
            return self._check(parse_arguments(arguments))
        except ToolArgumentsError:
            raise
        except RecursionError:
            raise ToolArgumentsError("the arguments are nested too deeply") from None
        except Exception as exc:  # a validator raising KeyError, say: the call's failure
            raise ToolArgumentsError(f"the arguments were refused: {exception_text(exc)}") from exc
        except SystemExit as exc:
            text = f"a validator of the tool {self.name!r} raised {exception_text(exc)}"
            raise ToolCrashed(f"{text}; the run stops") from exc

    async def invoke(self, arguments: dict[str, Any], context: ToolContext) -> Any:
        """Run the tool with validated `arguments`; exceptions propagate unchanged.

        Sync functions run in a worker thread so they never block the event loop.
        """
        args, kwargs = self._bind(arguments, context)
        if self._is_async:
            result = self.function(*args, **kwargs)
        else:
            # A thread cannot be interrupted: on cancellation (a timeout, the run being
            # left) it is abandoned to finish on its own and its result is dropped.
            call = functools.partial(_in_thread, self.function, args, kwargs)
            try:
                result = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
            except _CarriedExit as carried:
                raise carried.error from None
        if inspect.isawaitable(result):
            # An async function hidden behind a sync wrapper (a partial, a decorator).
            result = await result
        return result

    def invoke_here(self, arguments: dict[str, Any], context: ToolContext) -> Any:
        """Run a sync tool in the calling thread (not the event loop's), as `invoke()` would.

        For a durable step that records the result in the same thread the moment the
        function returns. An async tool raises `ToolDefinitionError`: `invoke()` it.
        """
        if self._is_async:
            raise ToolDefinitionError(f"tool {self.name!r} is async: invoke() it")
        args, kwargs = self._bind(arguments, context)
        return self.function(*args, **kwargs)

    @property
    def is_async(self) -> bool:
        """Whether the tool's function is async (a sync one runs in a worker thread)."""
        return self._is_async

    def with_handler(self, handler: Callable[[dict[str, Any], ToolContext], Any]) -> Tool:
        """This tool (name, schema, validation, approval rule) calling `handler` instead.

        `handler(arguments, context)`, sync or async, gets the validated arguments as
        `invoke()` would; use it to route calls through a durable step, a cache or a
        log. The new tool's calls run one at a time (`concurrent=False`), so that their
        order is the same on every run of the same step.
        """
        if not callable(handler):
            raise ToolDefinitionError(f"the handler for tool {self.name!r} is not callable")

        def bind(
            arguments: dict[str, Any], context: ToolContext
        ) -> tuple[tuple[Any, ...], dict[str, Any]]:
            return (arguments, context), {}

        return Tool(
            name=self.name, description=self.description, parameters=self.parameters,
            strict=self.strict, concurrent=False, function=handler, check=self._check,
            bind=bind, needs_approval=self.needs_approval, idempotent=self.idempotent,
        )  # fmt: skip

    @classmethod
    def from_schema(
        cls,
        name: str,
        parameters: Mapping[str, Any],
        handler: Callable[..., Any],
        *,
        description: str = "",
        strict: bool = False,
        concurrent: bool = True,
        needs_approval: ApprovalRule = False,
        idempotent: bool = False,
        early: bool = False,
    ) -> Tool:
        """A tool from a hand-written JSON schema.

        `handler(args)` or `handler(args, context)`, sync or async, gets the validated
        arguments as a dict. Arguments are checked with `jsonschema`, using the draft the
        schema's `$schema` names (Draft 2020-12 by default); no defaults are filled in.
        """
        label = f"tool {name!r}"
        _check_name(name, "Tool.from_schema()")
        if not callable(handler):
            raise ToolDefinitionError(f"the handler of {label} is not callable: {handler!r:.80}")
        if not isinstance(parameters, Mapping) or parameters.get("type") != "object":
            raise ToolDefinitionError(
                f'the parameters of {label} must be an object schema ({{"type": "object", ...}})'
            )
        schema = copy.deepcopy(dict(parameters))
        check = raw_arguments(schema, label)
        if strict:
            schema, check = strict_arguments(schema, check, label)
        takes_context = handler_takes_context(handler, label)

        def bind(
            arguments: dict[str, Any], context: ToolContext
        ) -> tuple[tuple[Any, ...], dict[str, Any]]:
            return ((arguments, context) if takes_context else (arguments,)), {}

        return cls(
            name=name,
            description=description,
            parameters=schema,
            strict=strict,
            concurrent=concurrent,
            function=handler,
            check=check,
            bind=bind,
            needs_approval=needs_approval,
            idempotent=idempotent,
            early=early,
        )


@overload
def tool(
    func: Callable[..., Any],
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool = False,
    concurrent: bool = True,
    needs_approval: ApprovalRule = False,
    idempotent: bool = False,
    early: bool = False,
) -> Tool: ...
@overload
def tool(
    func: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool = False,
    concurrent: bool = True,
    needs_approval: ApprovalRule = False,
    idempotent: bool = False,
    early: bool = False,
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool = False,
    concurrent: bool = True,
    needs_approval: ApprovalRule = False,
    idempotent: bool = False,
    early: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a `Tool` of a function: `@tool`, `@tool()` or `@tool(name=..., strict=True, ...)`.

    The schema comes from the type hints, the description from the docstring's first
    paragraph and each parameter's description from its `Args:` (or Sphinx / NumPy)
    entry unless `Field(description=...)` gives one. A parameter annotated `ToolContext`
    receives the call's context and is not shown to the model. If the only other
    parameter is a pydantic model, the model's own schema becomes the tool's schema and
    the function receives a model instance. `strict=True` sends an OpenAI strict-mode
    schema: parameters with defaults become nullable, and `null` means "use the default".
    `concurrent=False` keeps the tool from running alongside other calls of its step.
    `needs_approval` makes calls wait for a person's approval (`True`, or a function of
    the arguments and context deciding per call); `idempotent=True` says a call may be
    run again if its outcome was lost in a crash (and an early result reused on a retry).
    `early=True` lets the tool start as soon as its call is complete, while the response
    still streams (with `Agent(early_tools=True)`; it must then be concurrent).
    Nothing is registered anywhere; pass the returned `Tool` to the agent.
    """

    def make(function: Callable[..., Any]) -> Tool:
        made = _tool_from_function(
            function, name=name, description=description, strict=strict, concurrent=concurrent
        )
        if needs_approval is False and not idempotent and not early:
            return made
        return Tool(
            name=made.name, description=made.description, parameters=made.parameters,
            strict=made.strict, concurrent=made.concurrent, function=made.function,
            check=made._check, bind=made._bind, needs_approval=needs_approval,
            idempotent=idempotent, early=early,
        )  # fmt: skip

    return make if func is None else make(func)


def format_tool_result(value: Any) -> str:
    """The text sent to the model for what a tool returned; never raises.

    A str as it is, bytes as UTF-8 text, anything else as compact JSON (see
    `_convert.to_jsonable` for how each type is converted).
    """
    return tool_result_text(value)


# --- tools from functions ----------------------------------------------------------------


def _tool_from_function(
    func: Callable[..., Any],
    *,
    name: str | None,
    description: str | None,
    strict: bool,
    concurrent: bool,
) -> Tool:
    if isinstance(func, Tool):
        raise ToolDefinitionError(
            f"{func!r} is already a tool; for other options use tool(it.function, ...)"
        )
    if not callable(func):
        raise ToolDefinitionError(
            f"a tool must be callable, got {type(func).__name__}: {func!r:.80}"
        )
    # A partial describes its function; an object with __call__ describes that method.
    target: Any = func.func if isinstance(func, functools.partial) else func
    if not (inspect.isroutine(target) or inspect.isclass(target)):
        target = type(target).__call__
    label = f"{getattr(func, '__qualname__', None) or _default_name(func)}()"
    tool_name = _default_name(func) if name is None else name
    _check_name(tool_name, label)
    try:
        signature = inspect.signature(func)
        hints = get_type_hints(target, include_extras=True)
    except Exception as exc:  # NameError for an unresolvable hint, TypeError, ValueError
        raise ToolDefinitionError(f"cannot read the signature of {label}: {exc}") from exc

    fields, context_name = _parameters(signature, hints, label)

    # Not inspect.getdoc: it would inherit "Call self as a function." for a bare __call__.
    docstring = getattr(target, "__doc__", None)
    if docstring is None and target is not func and not isinstance(func, functools.partial):
        docstring = type(func).__doc__  # an object with __call__: its class's doc
    doc = parse_docstring(docstring)
    only = next(iter(fields.values()))[0] if len(fields) == 1 else None
    if inspect.isclass(only) and issubclass(only, BaseModel):
        parameters, check = model_arguments(only, next(iter(fields)), label)
    else:
        parameters, check = signature_arguments(fields, doc.params, label)
    if strict:
        parameters, check = strict_arguments(parameters, check, label)

    positional_only = [p.name for p in signature.parameters.values() if p.kind is p.POSITIONAL_ONLY]

    def bind(
        arguments: dict[str, Any], context: ToolContext
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        kwargs = dict(arguments)
        if context_name is not None:
            kwargs[context_name] = context
        args = tuple(kwargs.pop(n) for n in positional_only)
        return args, kwargs

    return Tool(
        name=tool_name,
        description=doc.description if description is None else description,
        parameters=parameters,
        strict=strict,
        concurrent=concurrent,
        function=func,
        check=check,
        bind=bind,
    )


def _parameters(
    signature: inspect.Signature, hints: dict[str, Any], label: str
) -> tuple[dict[str, tuple[Any, Any]], str | None]:
    """The schema's fields (type, default) and the name of the `ToolContext` parameter."""
    context_name: str | None = None
    fields: dict[str, tuple[Any, Any]] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            stars = "*" if param.kind is param.VAR_POSITIONAL else "**"
            raise ToolDefinitionError(
                f"{label} takes {stars}{param.name}; a tool's parameters must each be named "
                f"and annotated so they can be described to the model"
            )
        if param.name not in hints:
            raise ToolDefinitionError(f"parameter {param.name!r} of {label} has no type annotation")
        hint = hints[param.name]
        if not _is_context(hint):
            fields[param.name] = (hint, param.default)
        elif context_name is None:
            context_name = param.name
        else:
            raise ToolDefinitionError(
                f"{label} has two ToolContext parameters, {context_name!r} and {param.name!r}"
            )
    return fields, context_name


# --- helpers -----------------------------------------------------------------------------


def _check_early(early: bool, concurrent: bool, label: str) -> None:
    if early and not concurrent:
        raise ToolDefinitionError(
            f"{label} cannot be both early=True and concurrent=False: a call started early "
            f"runs alongside the rest of its step"
        )


def _check_name(name: object, label: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ToolDefinitionError(
            f"invalid tool name {name!r} for {label}: a name must be 1-64 letters, digits, "
            f"'_' or '-'; pass name=..."
        )


def _default_name(func: Any) -> str:
    target = func.func if isinstance(func, functools.partial) else func
    name = getattr(target, "__name__", None)
    return name if isinstance(name, str) else type(target).__name__


def _is_context(hint: Any) -> bool:
    if get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    if hint is ToolContext or get_origin(hint) is ToolContext:  # also ToolContext[Deps]
        return True
    # `ToolContext | None` too: it must never reach the schema.
    return get_origin(hint) in (Union, types.UnionType) and any(
        arg is ToolContext or get_origin(arg) is ToolContext for arg in get_args(hint)
    )


def _is_async(func: Callable[..., Any]) -> bool:
    # The second test catches an object whose class defines `async def __call__`.
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(type(func).__call__)


class _CarriedExit(Exception):
    """Carries a GeneratorExit out of a worker thread.

    asyncio hands a thread's exception to the waiting task with `coroutine.throw()`,
    and a GeneratorExit thrown that way closes the whole task instead of propagating
    to the code that could catch it; raised again here, it propagates as usual.
    """

    def __init__(self, error: GeneratorExit) -> None:
        super().__init__()
        self.error = error


def _in_thread(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return function(*args, **kwargs)
    except GeneratorExit as exc:
        raise _CarriedExit(exc) from None
