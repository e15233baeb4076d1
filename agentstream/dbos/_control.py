"""Requests to a durable run from any process: stop it, cancel one of its tool calls.

They are rows of the table `agentstream_control`, beside the event log in the same
database, numbered per run in the order they were made. The process where the run's
workflow goes on reads them (`RunControl` in `_steer` polls its run's rows); a request
made while no process runs the workflow waits there for whichever process recovers it.
Steering messages do not go here: they are DBOS messages, consumed exactly once by the
workflow itself (see `_steer`).
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ._log import EventLog

__all__ = ["ControlTable"]

_TABLE = "agentstream_control"
_STOP = "stop"
_CANCEL = "cancel"


class ControlTable:
    """The control requests of durable runs, in the event log's database."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self._ready = False
        self._lock = threading.Lock()
        metadata = sa.MetaData()
        self._table = sa.Table(
            _TABLE,
            metadata,
            sa.Column("workflow_id", sa.String(512), primary_key=True),
            sa.Column("kind", sa.String(16), primary_key=True),
            sa.Column("call_id", sa.String(256), primary_key=True),
            sa.Column("reason", sa.Text, nullable=True),
        )
        self._metadata = metadata

    # Sync: called in worker threads.

    def _db(self) -> sa.Engine:
        engine = self._log._db()
        with self._lock:
            if not self._ready:
                try:
                    self._metadata.create_all(engine, checkfirst=True)
                except sa.exc.DBAPIError:
                    if not sa.inspect(engine).has_table(_TABLE):  # another process made it
                        raise
                self._ready = True
        return engine

    def stop(self, workflow_id: str) -> None:
        """Ask the process running `workflow_id` to stop it now."""
        self._insert(workflow_id, _STOP, "", None)

    def cancel(self, workflow_id: str, call_id: str, reason: str | None) -> None:
        """Ask for call `call_id` of `workflow_id` to be cancelled (the first ask wins)."""
        self._insert(workflow_id, _CANCEL, call_id, reason)

    def requests(self, workflow_id: str) -> tuple[bool, dict[str, str | None]]:
        """Whether the run was asked to stop, and the calls asked cancelled (their reasons)."""
        table = self._table
        query = sa.select(table.c.kind, table.c.call_id, table.c.reason).where(
            table.c.workflow_id == workflow_id
        )
        with self._db().connect() as connection:
            rows: list[Any] = list(connection.execute(query).all())
        stop = any(kind == _STOP for kind, _, _ in rows)
        return stop, {call: reason for kind, call, reason in rows if kind == _CANCEL}

    def _insert(self, workflow_id: str, kind: str, call_id: str, reason: str | None) -> None:
        engine = self._db()
        dialect = sqlite if engine.dialect.name == "sqlite" else postgresql
        values = {"workflow_id": workflow_id, "kind": kind, "call_id": call_id, "reason": reason}
        statement = dialect.insert(self._table).values(**values).on_conflict_do_nothing()
        with engine.begin() as connection:
            connection.execute(statement)
