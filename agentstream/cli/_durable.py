"""`web --durable URL`: the web server's runs as DBOS workflows with an event log.

Each chat's run is a durable workflow (`agentstream.dbos.DurableAgent`); its events go
to the same database, so a page or a `useChat` client reattaches by chat id or with
`Last-Event-ID` after a reload or after this server was killed and started again (DBOS
recovers the runs that were going on when it launches). Each server is a `Worker`: a
live one takes over the runs of a server silent for `stale` seconds, and on SIGTERM a
server lets its runs finish for `grace` seconds, then hands the rest off at once.
Needs the `dbos` extra.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from .._agent import Agent
from .._exceptions import SetupError

__all__ = ["database_url", "durable_agent"]


def database_url(given: str) -> str:
    """A DBOS database URL: a Postgres or SQLite URL as given, a file path as SQLite."""
    if given.startswith(("sqlite:", "postgres:", "postgresql:", "postgresql+")):
        return given
    return "sqlite:///" + os.path.abspath(given)


def durable_agent(
    agent: Agent,
    url: str,
    worker: str | None,
    transport: Any = None,
    *,
    stale: float = 15.0,
    grace: float = 30.0,
) -> tuple[Any, Any]:
    """The DurableAgent for the web's runs, and a context that launches DBOS around serving."""
    try:
        from dbos import DBOS

        from ..dbos import DurableAgent, Worker
    except ImportError as exc:
        raise SetupError(
            f"--durable needs the dbos extra: pip install 'agentstream[dbos]' ({exc})"
        ) from None
    this = Worker(url, worker, stale=stale, grace=grace)
    DBOS(
        config={
            "name": "agentstream-web",
            "system_database_url": url,
            # Fixed, so that a restarted server recovers the runs of the one before it.
            "application_version": "agentstream-web-1",
            "executor_id": this.name,
            "log_level": "WARNING",  # its INFO lines show the database URL
        }
    )
    durable = DurableAgent(agent, name="web", events_url=url, transport=transport, worker=this)

    @asynccontextmanager
    async def launched() -> AsyncIterator[None]:
        # uvicorn sends the SIGTERM it caught again once it has stopped serving: this
        # handler takes it, so the process goes on to drain its runs (on exit below).
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _drain_instead) if main else None
        try:
            async with this.running():  # recovers this worker's runs that a crash cut
                yield
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)

    return durable, launched()


def _drain_instead(signum: int, frame: Any) -> None:
    """SIGTERM after serving: nothing to do here, the drain is under way."""
