"""Steering a run: user messages sent while it goes on, delivered at a step boundary.

`AgentRun.send` queues a message in the run's state (so a paused or crashed run still
delivers it after a resume) and notes the `MessageQueued` event to report: at once if
tool calls run (their relay is woken), else at the loop's next pause between events.
The queue is delivered before the next request, after the step's tool results.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from .._events import MessageDelivered, MessageQueued
from .._exceptions import SetupError
from ..state._state import RunState

__all__ = ["announce", "deliver", "queue_message"]


def queue_message(
    state: RunState, text: str, news: list[MessageQueued], wake: Callable[[Any], None]
) -> str:
    """Queue `text` for the run's next request; its id. `news` gains its event, and
    `wake(news)` lets calls running now report it at once."""
    if not isinstance(text, str) or not text.strip():
        raise SetupError("send() takes the text of a user message (a non-empty string)")
    if state.stop_reason is not None:
        raise SetupError(
            "the run has ended (or paused): send the message with the next run, or after "
            "resuming this one"
        )
    message_id = "msg_" + secrets.token_hex(6)
    state.queued.append({"id": message_id, "text": text, "step": state.step})
    news.append(MessageQueued(message_id, text, state.step))
    wake(news)
    return message_id


def announce(news: list[MessageQueued]) -> list[MessageQueued]:
    """The `MessageQueued` events not reported yet (and forget them)."""
    taken = news[:]
    news.clear()
    return taken


def deliver(state: RunState, step: int) -> list[MessageDelivered]:
    """Add the queued messages to the conversation before the request of `step`."""
    delivered = []
    for message in state.queued:
        position = len(state.messages)
        state.messages.append({"role": "user", "content": message["text"]})
        delivered.append(MessageDelivered(step, message["id"], message["text"], position))
    state.queued.clear()
    return delivered
