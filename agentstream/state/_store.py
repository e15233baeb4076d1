"""Where run states are kept: the `Store` protocol and `Session`, a conversation in a store.

A store keeps one JSON document per key. A session keeps, under its id, the state of
its latest run: saved after every step and every finished tool call while the run goes
on (so a crash loses at most the call in progress), and after the run ends (so the next
run continues the conversation). `agentstream.stores` has an in-memory store and the
embedded default on SQLite; a Redis or Postgres store is a short class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .._exceptions import RunError, SetupError, StateError
from ._state import RunState

__all__ = ["Session", "SessionBusy", "Store", "StoreError", "state_of_session"]


@runtime_checkable
class Store(Protocol):
    """Keeps one JSON document per key. Implementations must not block the event loop.

    A store may also offer `swap(key, expected, document) -> bool`: save `document` only
    if `key` still holds `expected` (`None`: nothing), atomically. Sessions use it to
    claim a run, so that a decision or a turn that arrives twice runs once; without it
    a session still works, but two runs started at once on it may both go on.
    """

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


class SessionBusy(RunError):
    """Another run holds the session: a resume or a turn that arrived twice, or at once."""


_CLAIM = "claimed_by"  # the key, beside the state's fields, naming the run that holds it


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
        document = await self._load()
        return None if document is None else RunState.from_json(document)

    async def save(self, state: RunState, *, claim: str | None = None) -> None:
        """Save `state` as the session's latest (held by the run `claim`, if given)."""
        try:
            await self.store.save(self.id, _document(state, claim))
        except Exception as exc:
            raise StoreError(f"could not save session {self.id!r}: {type(exc).__name__}") from exc

    async def clear(self) -> None:
        """Forget the session's conversation and any unfinished run."""
        await self.store.delete(self.id)

    async def release(self, claim: str | None = None) -> bool:
        """Free the session from the run holding it (`claim`: only from that run).

        A run frees it itself when it ends, pauses or fails; call this only after the
        process of a resumed run died, so that the run can be resumed again.
        """
        document = await self._load()
        if document is None:
            return False
        data = json.loads(document)
        holder = data.pop(_CLAIM, None) if isinstance(data, dict) else None
        if holder is None or (claim is not None and holder != claim):
            return False
        freed = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return await self._swap(document, freed)

    async def _load(self) -> str | None:
        try:
            return await self.store.load(self.id)
        except Exception as exc:
            raise StoreError(f"could not load session {self.id!r}: {type(exc).__name__}") from exc

    async def _swap(self, expected: str | None, document: str) -> bool:
        swap = getattr(self.store, "swap", None)
        try:
            if swap is None:
                await self.store.save(self.id, document)
                return True
            return bool(await swap(self.id, expected, document))
        except Exception as exc:
            raise StoreError(f"could not save session {self.id!r}: {type(exc).__name__}") from exc


def _document(state: RunState, claim: str | None) -> str:
    if claim is None:
        return state.to_json()
    data = {**state.to_dict(), _CLAIM: claim}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


async def state_of_session(
    session: Session,
    fresh: RunState,
    *,
    resume: bool,
    added: list[dict[str, Any]],
    claim: str,
) -> RunState:
    """The state a run given `session` starts from, claimed for that run.

    To resume: the session's unfinished run, held by `claim` until it ends or pauses.
    Otherwise a new run (`fresh`'s id) whose conversation is the session's followed by
    `added`; a session whose run is unfinished is refused rather than continued by
    accident. Either way the state is swapped in for the one read: a run that read the
    same state at the same moment gets `SessionBusy` and runs nothing.
    """
    document = await session._load()
    saved = None if document is None else RunState.from_json(document)
    holder = None if document is None else _holder(document)
    if holder is not None:
        raise SessionBusy(
            f"session {session.id!r} is held by another run ({holder}); if its process "
            f"died, free it with `await session.release()`"
        )
    if resume:
        if saved is None:
            raise StateError(f"session {session.id!r} has no run to resume")
        if saved.finished:
            raise StateError(f"session {session.id!r} has no unfinished run")
        saved.stop_reason = None
        state, kept = saved, claim
    else:
        if saved is not None and not saved.finished:
            raise StateError(
                f"session {session.id!r} has an unfinished run (step {saved.step}, "
                f"{saved.stop_reason or 'interrupted'}): resume it with "
                f"agent.resume(session=...) or forget it with `await session.clear()`"
            )
        state = fresh if saved is None else RunState.start(fresh.run_id, [*saved.messages, *added])
        kept = None  # a new turn holds no claim: after a crash it is resumed as it is
    if not await session._swap(document, _document(state, kept)):
        raise SessionBusy(f"session {session.id!r} was taken by another run at the same moment")
    return state


def _holder(document: str) -> str | None:
    data = json.loads(document)
    holder = data.get(_CLAIM) if isinstance(data, dict) else None
    return holder if isinstance(holder, str) else None
