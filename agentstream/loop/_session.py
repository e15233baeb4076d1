"""A run's session: taking up its conversation, saving the state, freeing it at the end."""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

from .._tool_events import ToolFinished, ToolStarted
from ..state._state import PendingCall, RunState
from ..state._store import Session, state_of_session
from ._execute import ToolRun
from ._media import media_parts

__all__ = ["SessionKeeper", "worth_saving"]


class SessionKeeper:
    """Saves a run's state in its session after every step and every tool call.

    A resumed run claims the session while it holds it (`claim`), so that a second
    process cannot take up the same unfinished run; the claim is given back when the
    run fails or is left, and dropped when it ends.
    """

    __slots__ = ("claim", "session")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.claim: str | None = None

    async def load(self, state: RunState, *, resume: bool, added: list[dict[str, Any]]) -> RunState:
        """The session's conversation (or its unfinished run) taken up as the run's state."""
        claim = f"{state.run_id}/{secrets.token_hex(6)}"
        sent = state.queued  # messages sent before the run began
        loaded = await state_of_session(
            self.session, state, resume=resume, added=added, claim=claim
        )
        loaded.queued.extend(sent)
        self.claim = claim if resume else None
        return loaded

    async def release(self) -> None:
        with contextlib.suppress(Exception):  # the run's own error is what the caller sees
            await self.session.release(self.claim)

    async def save(self, state: RunState) -> None:
        held = self.claim if state.stop_reason is None else None
        await self.session.save(state, claim=held)

    async def starting(self, state: RunState, batch: list[ToolRun]) -> None:
        """Save that these calls are running before they start: after a crash, a call
        that may have had effects is never taken for one that never ran."""
        pending = state.pending
        assert pending is not None
        starting = {run.id for run in batch}
        for call in pending.calls:
            if call.id in starting:
                call.status = "running"
        await self.save(state)


def worth_saving(event: object, by_id: dict[str, PendingCall]) -> bool:
    """Record what a tool event says of its call; whether the state is worth saving now."""
    if isinstance(event, ToolStarted):
        call = by_id[event.id]
        if call.status == "running":
            return False  # saved before it started
        call.status = "running"  # it started early
        return True
    if isinstance(event, ToolFinished):
        call = by_id[event.id]
        call.status, call.output = "finished", event.output
        call.media = media_parts(event.media) or None
        return True
    return False  # progress is not worth a checkpoint
