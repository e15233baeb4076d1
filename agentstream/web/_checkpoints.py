"""Runs paused for approval, kept per chat until the decisions arrive.

A run that ends with `stop_reason == "approval_required"` leaves its state (JSON) in the
registry's `LiveRun`; with a store, the app also saves it there under the chat id, so
that the decisions can arrive after a server restart (or at another worker sharing the
store). The next `POST /api/chat` whose last assistant message holds the decisions
resumes it; a new user message instead forgets it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from agentstream import Store, StoreError

from ._runs import RunRegistry

__all__ = ["Checkpoints", "Paused"]

logger = logging.getLogger("agentstream.web")

_PREFIX = "agentstream.web.chat:"
_WIRE = "agentstream.web.wire:"
_VERSION = 1
_KEPT_CHATS = 1024  # chats whose wire messages are kept in memory without a store


class Paused:
    """A paused run: its state as JSON and the UI message it streams into."""

    __slots__ = ("message_id", "state")

    def __init__(self, state: str, message_id: str | None) -> None:
        self.state = state
        self.message_id = message_id


class Checkpoints:
    """Paused runs by chat id: in the registry, and in `store` when there is one."""

    def __init__(self, runs: RunRegistry, store: Store | None) -> None:
        self.runs = runs
        self.store = store
        self._wire: dict[str, list[dict[str, Any]]] = {}

    async def save_wire(self, chat_id: str, messages: list[dict[str, Any]]) -> None:
        """Keep the chat's assistant messages that the page cannot send back as they were
        (reasoning, thought signatures): in memory (the latest chats), and in the store."""
        self._wire.pop(chat_id, None)
        self._wire[chat_id] = messages
        while len(self._wire) > _KEPT_CHATS:
            del self._wire[next(iter(self._wire))]
        if self.store is None:
            return
        try:
            await self.store.save(_WIRE + chat_id, json.dumps(messages))
        except Exception as exc:
            raise StoreError(f"could not save the chat's messages: {type(exc).__name__}") from exc

    async def wire(self, chat_id: str) -> list[dict[str, Any]]:
        """The chat's kept wire messages (none if unknown)."""
        kept = self._wire.get(chat_id)
        if kept is not None or self.store is None:
            return kept or []
        try:
            text = await self.store.load(_WIRE + chat_id)
        except Exception as exc:
            raise StoreError(f"could not load the chat's messages: {type(exc).__name__}") from exc
        try:
            loaded = json.loads(text) if text is not None else []
        except ValueError:
            loaded = []
        return [m for m in loaded if isinstance(m, dict)] if isinstance(loaded, list) else []

    async def save(self, chat_id: str, paused: Paused) -> None:
        """Keep `paused` in the store (the registry already has it)."""
        if self.store is None:
            return
        document = {"version": _VERSION, "state": paused.state, "messageId": paused.message_id}
        try:
            await self.store.save(_PREFIX + chat_id, json.dumps(document))
        except Exception as exc:
            raise StoreError(f"could not save the paused run: {type(exc).__name__}") from exc

    async def find(self, chat_id: str) -> Paused | None:
        """The chat's paused run: the registry's if it holds one, else the store's."""
        live = self.runs.get(chat_id)
        if live is not None and live.paused is not None:
            return Paused(live.paused, live.message_id)
        if self.store is None:
            return None
        try:
            text = await self.store.load(_PREFIX + chat_id)
        except Exception as exc:
            raise StoreError(f"could not load the paused run: {type(exc).__name__}") from exc
        if text is None:
            return None
        try:
            document = json.loads(text)
        except ValueError:
            logger.warning("chat %s: the saved paused run is not JSON; ignored", chat_id)
            return None
        if isinstance(document, dict) and document.get("claimed") is True:
            return None  # taken by a resume under way
        state, message_id = document.get("state"), document.get("messageId")
        if document.get("version") != _VERSION or not isinstance(state, str):
            logger.warning("chat %s: the saved paused run has another format; ignored", chat_id)
            return None
        return Paused(state, message_id if isinstance(message_id, str) else None)

    async def claim(self, chat_id: str, paused: Paused) -> bool:
        """Take the chat's paused run for one resume; `False` if another took it first.

        With a store the claim is an atomic swap there (the one place two workers
        sharing it both see), else a check and clear in the registry with no await
        between: either way a decision that arrives twice resumes the run once.
        """
        live = self.runs.get(chat_id)
        if self.store is None:
            if live is None or live.paused != paused.state:
                return False
            live.paused = None
            return True
        swap = getattr(self.store, "swap", None)
        key = _PREFIX + chat_id
        try:
            text = await self.store.load(key)
            if text is None or _state_of(text) != paused.state:
                return False
            taken = json.dumps({"version": _VERSION, "claimed": True})
            if swap is not None and not await swap(key, text, taken):
                return False
        except Exception as exc:
            raise StoreError(f"could not claim the paused run: {type(exc).__name__}") from exc
        if live is not None:
            live.paused = None
        return True

    async def forget(self, chat_id: str) -> None:
        """Drop the chat's paused run (it is resumed, or the chat went on without it)."""
        live = self.runs.get(chat_id)
        if live is not None:
            live.paused = None
        if self.store is None:
            return
        try:
            await self.store.delete(_PREFIX + chat_id)
        except Exception as exc:
            raise StoreError(f"could not delete the paused run: {type(exc).__name__}") from exc


def _state_of(text: str) -> object:
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document.get("state") if isinstance(document, dict) else None
