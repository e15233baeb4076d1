"""`ScriptedModel`: a fake Chat Completions server driven by a script or a policy."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx2
import openai

from ._chunks import Stamp
from ._reply import Reply
from ._request import ModelRequest, Policy
from ._responses_wire import render_responses, resume_responses
from ._transport import AsyncScriptedTransport, ScriptedTransport
from ._wire import Answer, Pace, error_answer, json_answer, render

__all__ = ["ScriptedModel"]

_BASE_URL = "http://scripted-model.invalid/v1"


class _ScriptExhausted(Exception):
    """The script has no reply left."""


class _Script:
    """A policy that hands out a fixed list of replies, in order."""

    __slots__ = ("_next", "_replies")

    def __init__(self, replies: Sequence[Reply]) -> None:
        self._replies = tuple(replies)
        for reply in self._replies:
            if not isinstance(reply, Reply):
                raise TypeError(f"a script holds Reply values, got {reply!r}")
        self._next = 0

    def __call__(self, request: ModelRequest) -> Reply:
        if self._next >= len(self._replies):
            raise _ScriptExhausted(
                f"ScriptedModel script exhausted: all {len(self._replies)} replies were "
                "used and another chat completion was requested."
            )
        self._next += 1
        return self._replies[self._next - 1]


class ScriptedModel:
    """A fake OpenAI-compatible model that streams real Chat Completions SSE bytes,
    and Responses API events (with `event:` lines) on `POST .../responses`.

    Give it a list of `Reply` values (one per model request, in order) or a
    policy `(ModelRequest) -> Reply`. Point the real `openai` client at it with
    `async_client()` / `client()`, an `httpx2` client at `async_transport()` /
    `transport()`, or anything at all at `serve(model)`. Every request it receives
    is kept in `requests`. A script that runs out answers HTTP 500. The events of a
    background response (`background: true`) are kept, and `GET .../responses/{id}`
    `?stream=true&starting_after=N` streams them again (a `Fault` cuts only the first
    answer): a resumed stream costs no new reply. An exception from a
    policy escapes the in-process transports, so the test sees it where the client
    call is; `serve` answers it with HTTP 500 instead.
    """

    def __init__(
        self,
        script: Sequence[Reply] | Policy,
        *,
        ttft: float = 0.0,
        tokens_per_second: float | None = None,
        name: str = "scripted-model",
    ) -> None:
        """`ttft`: seconds before the first chunk; `tokens_per_second`: None streams flat out."""
        if ttft < 0:
            raise ValueError(f"ttft must be >= 0, got {ttft}")
        if tokens_per_second is not None and tokens_per_second <= 0:
            raise ValueError(f"tokens_per_second must be > 0 or None, got {tokens_per_second}")
        self._policy: Policy = script if callable(script) else _Script(script)
        self._pace = Pace(ttft, tokens_per_second)
        self._name = name
        self._requests: list[ModelRequest] = []
        # The events of each background response, by id, to stream them again.
        self._kept: dict[str, list[Any]] = {}
        self._answers = 0
        self._calls = 0
        # The blocking client may be used from several threads at once; reentrant so
        # that a policy can read `requests`.
        self._lock = threading.RLock()

    @property
    def name(self) -> str:
        """The model id listed by `GET /models` and echoed when a request names none."""
        return self._name

    @property
    def requests(self) -> list[ModelRequest]:
        """Every request received so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    def _handle(self, request: ModelRequest) -> Answer:
        """Record `request` and answer it (used by the transports and the server)."""
        with self._lock:
            self._requests.append(request)
            path = request.path.rstrip("/")
            if path.endswith("/chat/completions"):
                if request.method != "POST":
                    return error_answer(405, f"Method {request.method} not allowed on {path}.")
                return self._complete(request)
            head, _, response_id = path.rpartition("/")
            if head.endswith("/responses") and request.method == "GET":
                kept = self._kept.get(response_id)
                if kept is None:
                    return error_answer(404, f"No response found with id '{response_id}'.")
                return resume_responses(kept, request.query, self._pace)
            if path.endswith("/responses"):
                if request.method != "POST":
                    return error_answer(405, f"Method {request.method} not allowed on {path}.")
                return self._complete(request)
            if path.endswith("/models") and request.method == "GET":
                model = {
                    "id": self._name,
                    "object": "model",
                    "created": 0,
                    "owned_by": "agentstream",
                }
                return json_answer(200, {"object": "list", "data": [model]})
            message = f"Unknown request URL: {request.method} {request.path}."
            return error_answer(404, message, code="unknown_url")

    def _complete(self, request: ModelRequest) -> Answer:
        if not isinstance(request.body, dict):
            return error_answer(400, "The request body is not a JSON object.")
        try:
            reply = self._policy(request)
        except _ScriptExhausted as exc:
            return error_answer(500, str(exc), code="script_exhausted")
        if not isinstance(reply, Reply):
            raise TypeError(f"a ScriptedModel policy must return a Reply, got {reply!r}")
        self._answers += 1
        call_ids = tuple(call.id or self._call_id() for call in reply.tool_calls)
        responses = request.api == "responses"
        stamp = Stamp(
            f"resp_scripted{self._answers}" if responses else f"chatcmpl-scripted{self._answers}",
            int(time.time()),
            request.model or self._name,
            call_ids,
        )
        headers = (("x-request-id", f"req_scripted{self._answers}"),)
        if responses:
            return render_responses(reply, request, stamp, self._pace, headers, self._kept)
        return render(reply, request, stamp, self._pace, headers)

    def _call_id(self) -> str:
        self._calls += 1
        return f"call_{self._calls}"

    def async_transport(self) -> httpx2.AsyncBaseTransport:
        """An `httpx2` async transport answered by this model."""
        return AsyncScriptedTransport(self._handle)

    def transport(self) -> httpx2.BaseTransport:
        """An `httpx2` blocking transport answered by this model."""
        return ScriptedTransport(self._handle)

    def async_client(self, *, max_retries: int = 0, **options: Any) -> openai.AsyncOpenAI:
        """A real `openai.AsyncOpenAI` whose HTTP transport is this model; close it after use.

        Retries are off by default: each retry would consume a reply of the script.
        Other `options` go to `AsyncOpenAI` unchanged.
        """
        options.setdefault("api_key", "scripted-key")
        options.setdefault("base_url", _BASE_URL)
        http_client = httpx2.AsyncClient(transport=self.async_transport())
        return openai.AsyncOpenAI(max_retries=max_retries, http_client=http_client, **options)

    def client(self, *, max_retries: int = 0, **options: Any) -> openai.OpenAI:
        """A real blocking `openai.OpenAI` whose transport is this model; close it after use."""
        options.setdefault("api_key", "scripted-key")
        options.setdefault("base_url", _BASE_URL)
        http_client = httpx2.Client(transport=self.transport())
        return openai.OpenAI(max_retries=max_retries, http_client=http_client, **options)
