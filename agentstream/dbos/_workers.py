"""Many workers on one database: heartbeats, takeover of a dead worker's runs, draining.

Open-source DBOS recovers, at launch, only the workflows of its own executor id: the runs
of a worker that dies and never comes back under its name would wait forever. Each
`Worker` therefore keeps a row in `agentstream_workers` (same database) whose `beat` it
renews every `beat` seconds, on the database's clock, from a task of its own (not from
its runs). A live worker that finds a row whose beat is older than `stale` seconds, or
that is marked `leaving`, claims it with one conditional UPDATE (one claimer wins, on
SQLite and Postgres alike), re-enqueues that executor's pending workflows, and deletes
the row. Any live worker then takes them from the queue.

A worker that was only slow (paused, swapped out) and was claimed meanwhile must not go
on with its runs. Every step of a `DurableAgent(worker=...)` first waits for a fresh
lease: the last renewal was sent less than 80% of `stale` ago, so no claimer can have
seen the row stale yet. A worker whose renewal finds its row claimed is `lost`: its
steps wait forever and it stops, as on SIGTERM. DBOS itself refuses the record of a
step that finishes on an execution that lost the workflow.
"""

from __future__ import annotations

import math
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

import anyio
import anyio.to_thread
import sqlalchemy as sa
from dbos import DBOS
from sqlalchemy.dialects import postgresql, sqlite

from agentstream import SetupError

from ._log import _engine

__all__ = ["Worker"]

_TABLE = "agentstream_workers"
_LEASE = 0.8  # share of `stale` a renewal stays good for, locally: margin for clock rates
P = ParamSpec("P")
T = TypeVar("T")


class Worker:
    """One worker among those sharing the database at `url`; make it before `DBOS(...)`.

    Give `name` to DBOS as its `executor_id` (without one, a unique name is made). A run
    continues on whichever worker is alive: a worker whose heartbeat is older than
    `stale` seconds is taken over by a live one. `grace` is how long a stopping worker
    lets its runs in progress finish before it hands the rest off. Every `beat` seconds
    (default: a fifth of `stale`, at most 3) it renews its row and looks for workers to
    take over.
    """

    def __init__(
        self,
        url: str,
        name: str | None = None,
        *,
        stale: float = 15.0,
        grace: float = 30.0,
        beat: float | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("sqlite:", "postgres")):
            raise SetupError("a Worker needs a sqlite:/// or postgresql:// database URL")
        if not stale > 0 or not grace >= 0:
            raise SetupError("a Worker needs stale > 0 and grace >= 0 seconds")
        self.url = url
        self.name = name or f"worker-{uuid.uuid4().hex[:12]}"
        self.stale = float(stale)
        self.grace = float(grace)
        self.beat = float(beat) if beat is not None else min(self.stale / 5, 3.0)
        self.lost = False
        """Claimed by another worker while alive (it was too slow): it runs no step again."""
        self.fenced = False
        self.leaving = False
        self.took_over: list[str] = []
        """The workers whose runs this one re-enqueued, in order."""
        self._renewed = -math.inf  # monotonic time the last good renewal was sent
        self._engine: sa.Engine | None = None
        self._table = sa.Table(
            _TABLE,
            sa.MetaData(),
            sa.Column("name", sa.String(256), primary_key=True),
            sa.Column("beat", sa.Float, nullable=False),
            sa.Column("state", sa.String(16), nullable=False),  # alive, leaving, claimed
            sa.Column("claimed_by", sa.String(256), nullable=True),
        )

    # --- the rows (sync: called in worker threads) -------------------------------------

    def _db(self) -> sa.Engine:
        if self._engine is None:
            engine = _engine(self.url)
            try:
                self._table.metadata.create_all(engine, checkfirst=True)
            except sa.exc.DBAPIError:  # made by another worker in the same instant
                if not sa.inspect(engine).has_table(_TABLE):
                    raise
            self._engine = engine
        return self._engine

    def _now(self) -> Any:
        """The database's clock in seconds: every worker compares beats on one clock."""
        if self._db().dialect.name == "sqlite":
            return (sa.func.julianday("now") - 2440587.5) * 86400.0
        return sa.cast(sa.func.extract("epoch", sa.func.clock_timestamp()), sa.Float)

    def register(self) -> bool:
        """Mark this worker alive; False while another worker is taking over its name."""
        table, now = self._table, self._now()
        dialect = sqlite if self._db().dialect.name == "sqlite" else postgresql
        values = {"name": self.name, "beat": now, "state": "alive", "claimed_by": None}
        statement = (
            dialect.insert(table)
            .values(**values)
            .on_conflict_do_update(
                index_elements=["name"],
                set_={"beat": now, "state": "alive", "claimed_by": None},
                # A claim in progress finishes first: its re-enqueues would race our launch.
                where=sa.or_(table.c.state != "claimed", table.c.beat < now - self.stale),
            )
            .returning(table.c.name)  # (a row back: done; rowcount is -1 on some drivers)
        )
        sent = time.monotonic()
        with self._db().begin() as connection:
            done = connection.execute(statement).first() is not None
        if done:
            self._renewed = sent
        return done

    def renew(self) -> bool:
        """Renew the heartbeat; False (and `lost`) once another worker has claimed it."""
        table = self._table
        sent = time.monotonic()
        with self._db().begin() as connection:
            found = connection.execute(
                sa.update(table)
                .where(table.c.name == self.name, table.c.state == "alive")
                .values(beat=self._now())
                .returning(table.c.name)
            ).first()
        if found:
            self._renewed = sent
        else:
            self.lost = self.fenced = True
        return bool(found)

    def claimable(self) -> list[str]:
        """The workers whose heartbeat is stale, or which left with runs to hand off."""
        table, now = self._table, self._now()
        query = sa.select(table.c.name).where(
            table.c.name != self.name,
            sa.or_(table.c.state == "leaving", table.c.beat < now - self.stale),
        )
        with self._db().connect() as connection:
            return [row[0] for row in connection.execute(query)]

    def claim(self, name: str) -> bool:
        """Claim worker `name`: one conditional UPDATE, so one claimer wins."""
        table, now = self._table, self._now()
        with self._db().begin() as connection:
            won = connection.execute(
                sa.update(table)
                .where(
                    table.c.name == name,
                    sa.or_(table.c.state == "leaving", table.c.beat < now - self.stale),
                )
                .values(state="claimed", claimed_by=self.name, beat=now)
                .returning(table.c.name)
            ).first()
        return won is not None

    def forget(self, name: str) -> None:
        """Delete the row of a worker whose runs this one has re-enqueued."""
        table = self._table
        with self._db().begin() as connection:
            connection.execute(
                sa.delete(table).where(table.c.name == name, table.c.claimed_by == self.name)
            )

    def leave(self) -> None:
        """Mark this worker leaving: another takes its remaining runs over at once."""
        table = self._table
        with self._db().begin() as connection:
            connection.execute(
                sa.update(table)
                .where(table.c.name == self.name, table.c.state == "alive")
                .values(state="leaving", beat=self._now())
            )

    def close(self) -> None:
        """Close the database connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # --- the fence ------------------------------------------------------------------------

    def fresh(self) -> bool:
        """Whether no other worker can have found this one stale yet."""
        return not self.fenced and time.monotonic() - self._renewed < _LEASE * self.stale

    def fence(
        self, step: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]:
        """`step`, started only under a fresh lease; on a lost worker it never ends."""

        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            await self.hold()
            try:
                return await step(*args, **kwargs)
            except Exception:
                # Cut by the hand-off (its database closed, its record refused): the
                # run goes on elsewhere; nothing of this error may reach its events.
                if self.fenced:
                    await anyio.sleep_forever()
                raise

        return guarded

    async def hold(self) -> None:
        """Wait until the lease is fresh; forever on a fenced worker."""
        while not self.fresh():
            if self.fenced:
                await anyio.sleep_forever()
            await anyio.sleep(0.05)

    # --- running ---------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Register, launch DBOS, beat and take over the dead; on exit, drain and leave."""
        while not await anyio.to_thread.run_sync(self.register):
            await anyio.sleep(self.beat)  # another worker is taking over this name
        DBOS.launch()  # recovers this name's own runs
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._beating)
                try:
                    yield
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._drain()
                    group.cancel_scope.cancel()
        finally:
            self.close()

    async def until_stopped(self) -> None:
        """Wait for SIGTERM or SIGINT, or until this worker is lost (inside `running()`)."""
        async with anyio.create_task_group() as group:

            async def until_lost() -> None:
                while not self.lost:
                    await anyio.sleep(self.beat)
                group.cancel_scope.cancel()

            group.start_soon(until_lost)
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    break
            group.cancel_scope.cancel()

    async def serve(self) -> None:
        """Work (DBOS's queues, the recovered runs) until stopped; then drain and leave.

        End the process when it returns: a tool the hand-off cut may still be running in
        a thread, and its run goes on on another worker.
        """
        async with self.running():
            await self.until_stopped()

    async def _beating(self) -> None:
        """Renew this worker's row; claim the stale ones and re-enqueue their runs."""
        while not self.lost:
            try:
                if await anyio.to_thread.run_sync(self.renew):
                    await self._take_over()
            except sa.exc.SQLAlchemyError:  # the database away for a moment: the lease ages
                pass
            await anyio.sleep(self.beat)
        if not self.leaving:
            # Taken over while alive: its runs are another's now. It stops as on SIGTERM
            # (a web server too, whose uvicorn handles that signal), to be started again.
            os.kill(os.getpid(), signal.SIGTERM)

    async def _take_over(self) -> None:
        if self.fenced:  # draining: DBOS is closing
            return
        for name in await anyio.to_thread.run_sync(self.claimable):
            if not self.fresh() or not await anyio.to_thread.run_sync(self.claim, name):
                continue
            # The only DBOS call that re-enqueues a workflow only while it is still
            # PENDING on the dead executor, so a duplicate request matches nothing.
            await anyio.to_thread.run_sync(DBOS._recover_pending_workflows, [name])
            await anyio.to_thread.run_sync(self.forget, name)
            self.took_over.append(name)

    async def _drain(self) -> None:
        """Stop taking runs, let those in progress finish within `grace`, hand off the rest."""
        if self.lost:
            await anyio.to_thread.run_sync(DBOS.destroy)
            return
        # DBOS.destroy stops the queues at once and waits for the runs; this side stops
        # (fences) every next step one second before it closes the database under them.
        wait = math.ceil(self.grace) + 1
        async with anyio.create_task_group() as group:

            async def fence_at_grace() -> None:
                await anyio.sleep(self.grace)
                self.fenced = True

            group.start_soon(fence_at_grace)
            await anyio.to_thread.run_sync(
                lambda: DBOS.destroy(workflow_completion_timeout_sec=wait)
            )
            self.fenced = True
            group.cancel_scope.cancel()
        self.leaving = True
        await anyio.to_thread.run_sync(self.leave)
