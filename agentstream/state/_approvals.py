"""Approvals as data: a call waiting for a person, and the person's decision."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = ["Approval", "ApprovalRequest", "Approvals", "Approver", "Decision"]


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A call waiting for a person's decision."""

    id: str
    """The call's id: the key of its decision in `Agent.resume(..., approvals=...)`."""
    tool: str
    arguments: dict[str, Any]
    """The validated arguments, as the tool would receive them."""
    step: int
    index: int
    raw_arguments: str
    """The arguments as the model sent them (JSON text)."""
    path: tuple[str, ...] = ()
    """For a call inside an agent used as a tool (`Agent.as_tool`): the agent tools'
    names from this run down to the run that made the call; `id` is then the outer
    call ids and the inner one joined by "/"."""


@dataclass(frozen=True, slots=True)
class Approval:
    """A decision on a call: approved or not, with an optional reason for the model."""

    approved: bool
    reason: str | None = None
    by: str | None = None
    """Who decided (free text, recorded in the saved state); "resume" or "approver" if unset."""

    @classmethod
    def approve(cls, reason: str | None = None, *, by: str | None = None) -> Approval:
        return cls(True, reason, by)

    @classmethod
    def deny(cls, reason: str | None = None, *, by: str | None = None) -> Approval:
        return cls(False, reason, by)


Decision: TypeAlias = "bool | Approval"
Approvals: TypeAlias = "Mapping[str, bool | Approval]"
"""Decisions by call id, as `Agent.resume` takes them."""
Approver: TypeAlias = Callable[[ApprovalRequest], "bool | Approval | Awaitable[bool | Approval]"]
"""Asked for each call that needs approval; sync or async; returns a decision."""
