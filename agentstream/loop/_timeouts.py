"""The time limits of a run."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Timeouts"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Time limits of a run in seconds; None means no limit.

    A model limit that is reached raises `RunTimeout`: past `first_chunk` or `idle` the
    attempt is abandoned and the step retried (see `Retries`); past `step` or `run` the
    run fails. A tool that runs past `tool` is stopped and the model is told so, as
    for a tool that raised.

    With `first_chunk` set and at most `idle`, the limits cost nothing per chunk: `idle`
    is sent as the HTTP read timeout (see docs/speed.md); otherwise each wait for a
    chunk carries a cancel scope.
    """

    first_chunk: float | None = None
    """From sending a request to the first chunk of its stream."""
    idle: float | None = None
    """Between two chunks of a stream."""
    step: float | None = None
    """One request, from sending it to the end of its stream."""
    tool: float | None = None
    """One tool call."""
    run: float | None = None
    """The whole run."""

    @property
    def bounds_streams(self) -> bool:
        """Whether any limit applies while a response streams."""
        return bool(self.first_chunk or self.idle or self.step or self.run)

    def __post_init__(self) -> None:
        for name in ("first_chunk", "idle", "step", "tool", "run"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"Timeouts.{name} must be positive or None, not {value!r}")
