"""The event log of durable runs: one ordered, numbered stream of events per workflow.

The rows live in the table `agentstream_events` of the DBOS system database (SQLite or
Postgres), keyed by (workflow id, seq). The workflow writes them as it goes; when DBOS
recovers a workflow, the replay makes the same events in the same order (each model
response and tool result comes from the record), so the same sequence numbers: a row
that is already there is left as it is (insert-or-ignore), and the log neither loses
nor repeats an event across a crash. Readers poll the table, from any process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any

import anyio
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from agentstream import Event, RunFailed, RunFinished, SetupError

from ._codec import decode

__all__ = ["EventLog"]

_TABLE = "agentstream_events"
_CHATS = "agentstream_chats"  # a chat's latest run, for clients that come back by chat id
_ENDED = 1.0  # seconds between looks at whether a silent run has ended
_BATCH = 500  # rows a reader takes per query


class EventLog:
    """The events of durable runs, in the database at `url` (a DBOS system database URL).

    `read(workflow_id)` yields `(seq, event)` pairs from any process: seq counts from 0
    in the run's order; `after=N` starts after seq N (what a client last saw). The
    reading ends with the run's `RunFinished` or `RunFailed`.
    """

    def __init__(self, url: str, *, poll: float = 0.1) -> None:
        if not isinstance(url, str) or not url.startswith(("sqlite:", "postgres")):
            raise SetupError("the event log needs a sqlite:/// or postgresql:// database URL")
        self.url = url
        self.poll = poll
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()
        metadata = sa.MetaData()
        self._table = sa.Table(
            _TABLE,
            metadata,
            sa.Column("workflow_id", sa.String(256), primary_key=True),
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("event", sa.Text, nullable=False),
        )
        self._chats = sa.Table(
            _CHATS,
            metadata,
            sa.Column("chat_id", sa.String(256), primary_key=True),
            sa.Column("workflow_id", sa.String(512), nullable=False),
            sa.Column("holder", sa.String(128), nullable=True),
        )
        self._metadata = metadata

    # --- the database (sync: called in worker threads) ---------------------------------

    def _db(self) -> sa.Engine:
        with self._lock:
            if self._engine is None:
                self._engine = _engine(self.url)
                try:
                    self._metadata.create_all(self._engine, checkfirst=True)
                except sa.exc.DBAPIError:
                    # Another process made the table in the same instant: fine if it is there.
                    inspector = sa.inspect(self._engine)
                    if not (inspector.has_table(_TABLE) and inspector.has_table(_CHATS)):
                        raise
            return self._engine

    def write_rows(self, workflow_id: str, rows: Sequence[tuple[int, str]]) -> None:
        """Insert rows that are not there yet (a replay's rows are already there)."""
        if not rows:
            return
        engine = self._db()
        dialect = sqlite if engine.dialect.name == "sqlite" else postgresql
        statement = dialect.insert(self._table).on_conflict_do_nothing()
        with engine.begin() as connection:
            connection.execute(
                statement,
                [{"workflow_id": workflow_id, "seq": seq, "event": text} for seq, text in rows],
            )

    def read_rows(self, workflow_id: str, after: int, limit: int = _BATCH) -> list[Any]:
        """Rows after seq `after`, in order, as far as they run without a gap."""
        table = self._table
        query = (
            sa.select(table.c.seq, table.c.event)
            .where(table.c.workflow_id == workflow_id, table.c.seq > after)
            .order_by(table.c.seq)
            .limit(limit)
        )
        with self._db().connect() as connection:
            found = connection.execute(query).all()
        rows: list[Any] = []
        for row in found:
            if row[0] != after + 1 + len(rows):
                break  # never hand out a row past one not visible yet
            rows.append(row)
        return rows

    def set_chat_run(self, chat_id: str, workflow_id: str, holder: str | None = None) -> None:
        """Make `workflow_id` the chat's latest run; `holder` is kept with it, as given."""
        engine = self._db()
        dialect = sqlite if engine.dialect.name == "sqlite" else postgresql
        values = {"chat_id": chat_id, "workflow_id": workflow_id, "holder": holder}
        statement = dialect.insert(self._chats).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["chat_id"], set_={"workflow_id": workflow_id, "holder": holder}
        )
        with engine.begin() as connection:
            connection.execute(statement)

    def chat_run(self, chat_id: str) -> tuple[str, str | None] | None:
        """The chat's latest run and its holder, if it has one."""
        chats = self._chats
        query = sa.select(chats.c.workflow_id, chats.c.holder).where(chats.c.chat_id == chat_id)
        with self._db().connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else (row[0], row[1])

    def close(self) -> None:
        """Close the database connections."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    # --- reading -----------------------------------------------------------------------

    async def read(
        self,
        workflow_id: str,
        *,
        after: int = -1,
        ended: Callable[[str], Awaitable[bool]] | None = None,
    ) -> AsyncGenerator[tuple[int, Event], None]:
        """The run's `(seq, event)` pairs after seq `after`, waiting for new ones, to the end.

        The end is its `RunFinished` or `RunFailed`; or, with `ended` (a check of the
        workflow's status), the last event of a run that ended without one (cancelled).
        """
        looked = time.monotonic()
        last_look = False
        while True:
            rows = await anyio.to_thread.run_sync(self.read_rows, workflow_id, after)
            for seq, text in rows:
                event = decode(text)
                after = seq
                yield seq, event
                if isinstance(event, (RunFinished, RunFailed)):
                    return
            if rows:
                continue
            if last_look:
                return
            if ended is not None and time.monotonic() - looked >= _ENDED:
                looked = time.monotonic()
                last_look = await ended(workflow_id)  # then one more read, for its last rows
                continue
            await anyio.sleep(self.poll)


def _engine(url: str) -> sa.Engine:
    parsed = sa.make_url(url)
    if parsed.drivername.startswith("sqlite"):
        # DBOS writes to the same file: wait for its locks rather than fail at once.
        return sa.create_engine(parsed, connect_args={"timeout": 30})
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return sa.create_engine(parsed, pool_pre_ping=True, pool_size=2, max_overflow=8)
