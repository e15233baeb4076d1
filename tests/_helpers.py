"""Small helpers shared by the loop's tests."""

from __future__ import annotations

from agentstream import Retries, tool

NO_RETRIES = Retries(max_retries=0)
"""For tests of how one failure is reported, before any retry could hide it."""


class Recorder:
    """A tool named `act` that counts its calls, for checking that a call never ran."""

    def __init__(self) -> None:
        self.calls = 0

        @tool
        def act() -> str:
            """Act."""
            self.calls += 1
            return "ok"

        self.tool = act

    @property
    def ran(self) -> bool:
        """Whether the tool ran at least once."""
        return self.calls > 0
