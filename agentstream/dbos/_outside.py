"""What any process can do to a durable run: stop it, steer it, cancel a call, read it.

`DurableAgent` has these methods; they reach the run through the database (DBOS's
tables and ours), whichever process runs its workflow: see `_steer` for how that
process takes them.
"""

from __future__ import annotations

import secrets
from typing import Any

import anyio
import anyio.to_thread
from dbos import DBOS

from agentstream import Event, SetupError

from ._codec import decode
from ._control import ControlTable
from ._drive import started_with
from ._log import EventLog
from ._steer import STEER_TOPIC

__all__ = ["ENDED", "FromOutside"]

ENDED = frozenset({"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})
"""The statuses of a workflow that has ended."""


class FromOutside:
    """The methods of `DurableAgent` that act on a run from any process."""

    log: EventLog | None
    control: ControlTable | None

    def _need_log(self) -> EventLog:
        if self.log is None:
            raise SetupError("this DurableAgent keeps no events: give it events_url=...")
        return self.log

    async def cancel(self, workflow_id: str) -> None:
        """Stop run `workflow_id` (from any process); its readers end.

        DBOS cancels the workflow for good; with an event log, the process running it
        also leaves the run at once (its model stream closed, its running tool
        cancelled), as a live run stopped.
        """
        await DBOS.cancel_workflow_async(workflow_id)
        if self.control is not None:
            await anyio.to_thread.run_sync(self.control.stop, workflow_id)

    async def cancel_call(self, workflow_id: str, call_id: str, reason: str | None = None) -> None:
        """Cancel one tool call of run `workflow_id`, from any process; the run goes on.

        The call's tool step, running or still to start, is cancelled where the run
        goes on, and the model is told as after `AgentRun.cancel_call`; a recovery never
        runs it again. A call that has finished by then is left as it is.
        """
        control = self.control
        if control is None:
            raise SetupError("cancelling calls needs an event log: give it events_url=...")
        await anyio.to_thread.run_sync(control.cancel, workflow_id, call_id, reason)

    async def steer(self, workflow_id: str, text: str) -> str:
        """Send run `workflow_id` a user message, from any process; its id.

        It is delivered once a step has finished, before the next request, as
        `AgentRun.send` (`MessageQueued`, then `MessageDelivered`, with this id).
        """
        if not isinstance(text, str) or not text.strip():
            raise SetupError("steer() takes the text of a user message (a non-empty string)")
        self._need_log()
        status = await DBOS.get_workflow_status_async(workflow_id)
        if status is None or status.status in ENDED:
            raise SetupError("the run has ended: send the message with the next run")
        message_id = "msg_" + secrets.token_hex(6)
        message = {"id": message_id, "text": text}
        await DBOS.send_async(workflow_id, message, topic=STEER_TOPIC)
        return message_id

    async def events_until_now(self, workflow_id: str) -> list[tuple[int, Event]]:
        """The `(seq, event)` pairs of run `workflow_id` written so far (no waiting)."""
        log = self._need_log()
        pairs: list[tuple[int, Event]] = []
        while True:
            after = pairs[-1][0] if pairs else -1
            rows = await anyio.to_thread.run_sync(log.read_rows, workflow_id, after)
            if not rows:
                return pairs
            pairs.extend((seq, decode(text)) for seq, text in rows)

    async def chat_messages(self, workflow_id: str) -> list[dict[str, Any]] | None:
        """The conversation of a run as its wire holds it: the whole conversation if it
        finished, else the one it was started on (None for an unknown run)."""
        status = await DBOS.get_workflow_status_async(workflow_id)
        if status is None:
            return None
        finished = getattr(status.output, "messages", None)  # a DurableResult's
        if status.status == "SUCCESS" and isinstance(finished, list):
            return [dict(message) for message in finished]
        return started_with(status)  # stopped or failed: what it was given holds
