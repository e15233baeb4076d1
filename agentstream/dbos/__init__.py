"""Durable runs on DBOS: an agent run as a workflow, each model request and tool call a step.

```python
from dbos import DBOS
from agentstream.dbos import DurableAgent

DBOS(config={"name": "agents", "system_database_url": "sqlite:///agents.db",
             "application_version": "1"})
weather = DurableAgent(agent, name="weather")   # before DBOS.launch()
DBOS.launch()
result = await weather.run("Weather in Paris?")
```

After a crash, `DBOS.launch()` in the restarted process recovers the runs that were going
on: every model request and tool call that had finished is replayed from the database
(the model is not asked again, the tool does not run again) and the run goes on from
there. A tool call that was running when the process died runs again if its tool is
idempotent (a DBOS step is at least once); any other is not run again, and the model is
told its outcome is unknown.
Approvals are durable waits (`DurableAgent.approve`, from any process); runs spread over
worker processes through a DBOS queue (`DurableAgent.enqueue`). With `events_url`, every
event of a run goes to an event log in the same database: `DurableAgent.stream` and
`DurableAgent.events` (or `EventLog.read`, from any process) yield `(seq, event)`, live
or late, from the start or after a seq; a run can be stopped (`cancel`), sent a message
(`steer`) or have one tool call cancelled (`cancel_call`) from any process. With a
`Worker` per process (heartbeats in the same database), a run goes on on whichever
worker is alive, and a worker stopped with SIGTERM drains. The package imports only
the public core; the core never imports it.
"""

from __future__ import annotations

# Without the extra, one ImportError that names the line to run, not a traceback into
# the integration's modules. Only the extra's own packages missing are caught.
try:
    import dbos as _dbos  # noqa: F401
except ModuleNotFoundError as _missing:
    if (_missing.name or "").partition(".")[0] not in ("dbos",):
        raise
    raise ImportError(
        f"agentstream.dbos needs the `dbos` extra ({_missing.name} is not installed): "
        "pip install 'agentstream[dbos]'",
        name=_missing.name,
    ) from None

from ._agent import APPROVAL_TOPIC as APPROVAL_TOPIC
from ._agent import DurableAgent as DurableAgent
from ._agent import DurableResult as DurableResult
from ._codec import RecordedError as RecordedError
from ._log import EventLog as EventLog
from ._workers import Worker as Worker

__all__ = [
    "APPROVAL_TOPIC",
    "DurableAgent",
    "DurableResult",
    "EventLog",
    "RecordedError",
    "Worker",
]
