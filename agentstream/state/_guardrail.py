"""A guardrail's verdict, as data: what a check returns to stop a run, and the result keeps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["GuardrailStage", "GuardrailTripped"]

GuardrailStage = Literal["input", "output"]
"""Where a guardrail looks: the run's input (beside the first request) or its final answer."""


@dataclass(frozen=True, slots=True)
class GuardrailTripped:
    """A guardrail's verdict that the run must not go on as it is.

    A check returns `GuardrailTripped("why")` to stop the run, or (an output guardrail)
    `GuardrailTripped("why", retry=True)` to have the model told why and asked once
    more. The run fills in `guardrail` and `stage`; `RunResult.guardrail` holds it.
    """

    message: str
    """Why: shown to the caller, and to the model when it is asked to answer again."""
    retry: bool = False
    """Output guardrails: ask the model for one more answer rather than stop (once a run)."""
    guardrail: str = ""
    """The name of the guardrail that tripped (set by the run)."""
    stage: GuardrailStage = "input"
    """Whether an input or an output guardrail tripped (set by the run)."""
