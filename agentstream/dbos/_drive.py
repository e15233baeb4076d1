"""The workflow's loop over its run: events to the log, steering at step boundaries."""

from __future__ import annotations

from typing import Any

import anyio

from agentstream import Agent, RunResult, StepFinished

from ._record import Recorder
from ._steer import RunControl

__all__ = ["NO_USAGE", "drive", "given_messages", "started_with"]

NO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


async def drive(
    agent: Agent,
    prompt: str | list[dict[str, Any]],
    deps: Any,
    recorder: Recorder,
    control: RunControl | None,
) -> RunResult[Any] | None:
    """Run `agent`, writing its events to `recorder`; its result, or None if it was stopped.

    With `control`, the run is steered from outside (`_steer`): the messages sent to it
    are taken after each `StepFinished` (a point every replay reaches in the same order),
    and a stop leaves the run at once, as a live run is left: its tools cancelled, its
    conversation consistent (every call answered).
    """
    with anyio.CancelScope() as stopping:
        async with anyio.create_task_group() as group:
            if control is not None:
                group.start_soon(control.watch, stopping.cancel)
            async with agent.stream(prompt, deps=deps) as run:
                if control is not None:
                    control.run = run
                async for event in run:
                    if control is not None:
                        event = control.relabel(event)
                    await recorder.add(event)
                    if control is not None and isinstance(event, StepFinished):
                        await control.take_messages()
            group.cancel_scope.cancel()
        return run.result
    return None


def started_with(status: Any) -> list[dict[str, Any]] | None:
    """The conversation a workflow's run was started on (its first argument), if a list."""
    given = status.input["args"] if status.input is not None else ()
    first = given[0] if given else None
    return [dict(m) for m in first] if isinstance(first, list) else None


def given_messages(prompt: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation a run was given (what a stopped run's result holds)."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(message) for message in prompt]
