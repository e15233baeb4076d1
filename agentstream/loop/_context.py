"""A run's context policy at work: the view each request is built from (`ContextKeeper`).

Made only for an agent with `context=`; a run without one never reaches this module.
The run's conversation (`RunState.messages`) keeps every message; the keeper builds
the view of it the next request sends (see `context/_compact`), makes the summary
request when trimming tool results is not enough, and learns from the server: the
usage it reports calibrates the estimate, and a request refused as too long lowers
the budget for the rest of the run (the step is tried once more). A resumed run
starts with a fresh keeper: its first request is compacted again from the whole
conversation.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from time import perf_counter
from typing import Any

import openai

from .._events import ContextCompacted
from .._exceptions import RunError, SetupError
from .._redact import redact_error
from .._usage import Usage
from ..context._compact import Compaction, Summary, Trim, compact
from ..context._policy import ContextPolicy
from ..context._summary import summary_request, too_long
from ..state._state import RunState
from ..wire.chat._assemble import StreamAssembler
from ..wire.chat._stream import ModelStream
from ..wire.responses._assemble import ResponsesAssembler
from ..wire.responses._request import chat_messages, responses_params
from ..wire.responses._stream import ResponsesStream
from ._config import RunConfig
from ._step import check_complete, stream_bounds

__all__ = ["ContextKeeper", "server_fields"]


def server_fields(config: RunConfig) -> dict[str, Any]:
    """Request fields asking the server to compact by itself (Responses API, `server=True`)."""
    policy = config.context
    if policy is None or not policy.server or config.api != "responses":
        return {}
    return {"context_management": [{"type": "compaction", "compact_threshold": policy.max_tokens}]}


class ContextKeeper:
    """The view of the conversation for each request of one run, within the policy's budget."""

    __slots__ = (
        "_ceiling",
        "_client_side",
        "_config",
        "_made",
        "_offset",
        "_policy",
        "_refused",
        "_scale",
        "_sent",
        "_steps_seen",
        "_trim",
        "_weights",
        "view",
    )  # fmt: skip

    def __init__(self, config: RunConfig, policy: ContextPolicy) -> None:
        self._config = config
        self._policy = policy
        # With `previous_response_id` the server holds the conversation: only its own
        # compaction (`server=True`) can shorten it.
        self._client_side = not (config.api == "responses" and config.chain_responses)
        self._trim = Trim()
        self._made: dict[tuple[int, str], dict[str, Any] | None] = {}  # results trimmed
        self._weights: dict[int, tuple[Mapping[str, Any], int]] = {}
        self._offset = 0  # what the server counted beyond the estimate of the last request
        self._scale = 1.0  # below 1 when the counter overestimated the last request
        self._sent: tuple[int, int] | None = None  # (messages, raw estimate) of the last view
        self._steps_seen = 0
        self._ceiling = policy.max_tokens  # lowered when the server refuses a request
        self._refused = 0  # the step whose request was refused as too long
        self.view: list[dict[str, Any]] | None = None
        """What the next request sends instead of the whole conversation (None: all of it)."""

    def _weigh(self, message: Mapping[str, Any]) -> int:
        """The counter's estimate of one message, kept for the messages of the conversation."""
        key = id(message)
        known = self._weights.get(key)
        if known is not None and known[0] is message:
            return int(known[1] * self._scale)
        try:
            weight = int(self._policy.counter.count([message]))
        except Exception as exc:  # the user's counter: only our own errors reach the caller
            raise SetupError(f"the context policy's counter failed: {exc!r:.200}") from exc
        self._weights[key] = (message, weight)
        return int(weight * self._scale)

    def _calibrate(self, state: RunState) -> None:
        """Learn from the usage reported for the last request. The tokens it cost beyond
        the estimate (tool definitions, the wire's own fields) are added to every later
        estimate; an estimate that was too high is scaled down instead, which stays on
        the safe side for a smaller view."""
        if self._sent is None:
            # No usage reported yet: the tool definitions, at four characters a token.
            tools = self._config.catalog.definitions() if self._config.tools else []
            self._offset = len(json.dumps(tools, default=str)) // 4 if tools else 0
            self._steps_seen = len(state.steps)  # a resumed run's steps were other views
            return
        if len(state.steps) == self._steps_seen:
            return
        self._steps_seen = len(state.steps)
        usage = state.steps[-1].usage
        raw = self._sent[1]
        if usage is not None and usage.prompt_tokens and raw:
            reported = usage.prompt_tokens
            self._offset = max(reported - raw, 0)
            self._scale = min(reported / raw, 1.0)

    async def prepare(
        self,
        state: RunState,
        step: int,
        client: openai.AsyncOpenAI,
        secret: str | None,
        run_deadline: float = math.inf,
    ) -> AsyncGenerator[ContextCompacted, None]:
        """Make `view` for the next request of `step`, compacting further if it must.

        A summary request is bounded by the run's time limits and retried by the client
        as any plain request (its `max_retries`); if it still fails, the run fails."""
        if not self._client_side:
            return
        self._calibrate(state)
        messages = state.messages
        if self._sent is not None and self._sent[0] == len(messages) and self._refused != step:
            return  # another attempt at the same conversation: the same view
        compaction = self._compact(messages, self._trim)
        summarised, usage = 0, None
        if compaction.summarise is not None:
            start, end = compaction.summarise
            span = (start, end, step)
            text, usage = await self._summary(messages, span, client, secret, run_deadline)
            state.usage += usage if usage is not None else Usage()
            trim = dataclasses.replace(compaction.trim, summary=Summary(end, text))
            after = self._compact(messages, trim)
            # The messages the summary took the place of (an earlier summary among them).
            earlier = self._trim.summary is not None
            summarised = len(compaction.view) - len(after.view) + (0 if earlier else 1)
            compaction = dataclasses.replace(
                after, tokens_before=compaction.tokens_before,
                shortened=compaction.shortened + after.shortened,
                dropped=compaction.dropped + after.dropped,
            )  # fmt: skip
        self._trim = compaction.trim
        self.view = compaction.view
        # The weights of the conversation's messages and of the trimmed results only.
        kept, made = self._weights, (m for m in self._made.values() if m is not None)
        ids = itertools.chain(map(id, messages), map(id, made))
        self._weights = {key: kept[key] for key in ids if key in kept}
        scale, self._scale = self._scale, 1.0
        raw = sum(self._weigh(message) for message in compaction.view)
        self._scale = scale
        self._sent = (len(messages), raw)
        if compaction.changed or summarised:
            yield ContextCompacted(
                step, compaction.dropped, compaction.shortened, summarised,
                compaction.tokens_before, compaction.tokens_after, usage,
            )  # fmt: skip

    def _compact(self, messages: list[dict[str, Any]], trim: Trim) -> Compaction:
        policy = self._policy
        limit = min(policy.max_tokens, self._ceiling)
        return compact(
            messages, trim, self._weigh, overhead=self._offset, limit=limit,
            target=int(limit * policy.target), keep_chars=policy.keep_chars,
            summarise=policy.summarise, made=self._made,
        )  # fmt: skip

    def refused(self, exc: RunError, step: int) -> bool:
        """Whether to try `step` again after `exc`: the first refusal of it as too long.

        The budget becomes what the view just refused was estimated at, less a tenth."""
        if self._refused == step or not self._client_side or not too_long(exc):
            return False
        self._refused = step
        if self._sent is not None:
            refused = self._sent[1] * self._scale + self._offset
            self._ceiling = max(int(refused * 0.9), 1)
        return True

    async def _summary(
        self,
        messages: list[dict[str, Any]],
        span: tuple[int, int, int],
        client: openai.AsyncOpenAI,
        secret: str | None,
        run_deadline: float,
    ) -> tuple[str, Usage | None]:
        """Ask the model to summarise `messages[start:end]` (after the last summary) for
        `step` (`span`: the three)."""
        config = self._config
        start, end, step = span
        summary = self._trim.summary
        earlier = summary.text if summary is not None else None
        turns = [message for message in messages[start:end] if message.get("role") != "system"]
        # The summary request must fit too: past the target, each turn gets its share.
        weight = sum(self._weigh(message) for message in turns) or 1
        target = min(self._policy.max_tokens, self._ceiling) * self._policy.target
        share = None
        if weight + self._offset > target:
            chars = sum(len(json.dumps(message, default=str)) for message in turns)
            share = max(int(chars * target / (weight + self._offset) / len(turns) * 0.8), 40)
        fields, conversation = summary_request(
            config.request, self._policy.summary_prompt, earlier, turns, share
        )
        try:
            return await _ask(config, client, fields, conversation, step, run_deadline)
        except RunError as exc:
            if secret is not None:
                redact_error(exc, secret)
            raise


async def _ask(
    config: RunConfig,
    client: openai.AsyncOpenAI,
    fields: dict[str, Any],
    conversation: list[dict[str, Any]],
    step: int,
    run_deadline: float,
) -> tuple[str, Usage | None]:
    """One request without tools on the agent's wire: its text and its usage."""
    assembler: StreamAssembler | ResponsesAssembler
    stream: ModelStream | ResponsesStream
    bounds = stream_bounds(config.timeouts, perf_counter(), run_deadline)
    if config.api == "responses":
        params = responses_params(
            fields, conversation, model=config.model, definitions=[], extra_step=False,
            chain=False, background=False,
        )  # fmt: skip
        stream = ResponsesStream(client, params, bounds=bounds)
        assembler = ResponsesAssembler(step=step)
    else:
        params = {
            "stream_options": {"include_usage": True}, **fields, "model": config.model,
            "messages": chat_messages(conversation), "stream": True,
        }  # fmt: skip
        assembler, stream = StreamAssembler(step=step), ModelStream(client, params, bounds=bounds)
    async with aclosing(stream.chunks()) as chunks:
        async for chunk in chunks:
            assembler.feed(chunk)
    check_complete(assembler, stream)
    response = assembler.finish()
    return response.message.content or "", response.usage_summary
