"""Where run states are kept: the `Store` protocol and `Session`, a conversation in a store.

A store keeps one JSON document per key. A session keeps, under its id, the state of
its latest run: saved after every step and every finished tool call while the run goes
on (so a crash loses at most the call in progress), and after the run ends (so the next
run continues the conversation). `agentstream.stores` has an in-memory store and the
embedded default on SQLite; a Redis or Postgres store is a short class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ._exceptions import RunError, SetupError, StateError
from ._state import RunState

__all__ = ["Session", "Store", "StoreError", "state_of_session"]


@runtime_checkable
class Store(Protocol):
    """Keeps one JSON document per key. Implementations must not block the event loop."""

    async def load(self, key: str) -> str | None:
        """The document saved under `key`, or `None`."""
        ...

    async def save(self, key: str, document: str) -> None:
        """Save `document` under `key`, replacing what was there, durably."""
        ...

    async def delete(self, key: str) -> None:
        """Forget `key` (no error if it is unknown)."""
        ...


class StoreError(RunError):
    """The store failed to load or save a run's state."""


@dataclass(frozen=True, slots=True)
class Session:
    """A conversation kept in `store` under `id`: runs given it continue it."""

    store: Store
    id: str = "default"

    def __post_init__(self) -> None:
        if not isinstance(self.store, Store):
            raise SetupError("a Session needs a store with async load, save and delete")
        if not isinstance(self.id, str) or not self.id:
            raise SetupError("a Session's id must be a non-empty string")

    async def state(self) -> RunState | None:
        """The state of the session's latest run, or `None` for a new session."""
        try:
            document = await self.store.load(self.id)
        except Exception as exc:
            raise StoreError(f"could not load session {self.id!r}: {type(exc).__name__}") from exc
        return None if document is None else RunState.from_json(document)

    async def save(self, state: RunState) -> None:
        """Save `state` as the session's latest."""
        try:
            await self.store.save(self.id, state.to_json())
        except Exception as exc:
            raise StoreError(f"could not save session {self.id!r}: {type(exc).__name__}") from exc

    async def clear(self) -> None:
        """Forget the session's conversation and any unfinished run."""
        await self.store.delete(self.id)


async def state_of_session(
    session: Session, fresh: RunState, *, resume: bool, added: list[dict[str, Any]]
) -> RunState:
    """The state a run given `session` starts from.

    To resume: the session's unfinished run. Otherwise a new run (`fresh`'s id) whose
    conversation is the session's followed by `added`; a session whose run is
    unfinished is refused rather than continued by accident.
    """
    saved = await session.state()
    if resume:
        if saved is None:
            raise StateError(f"session {session.id!r} has no run to resume")
        if saved.finished:
            raise StateError(f"session {session.id!r} has no unfinished run")
        saved.stop_reason = None
        return saved
    if saved is not None and not saved.finished:
        raise StateError(
            f"session {session.id!r} has an unfinished run (step {saved.step}, "
            f"{saved.stop_reason or 'interrupted'}): resume it with "
            f"agent.resume(session=...) or forget it with `await session.clear()`"
        )
    if saved is None:
        return fresh
    return RunState.start(fresh.run_id, [*saved.messages, *added])
