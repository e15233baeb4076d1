"""`web --durable URL`: the web server's runs as DBOS workflows with an event log.

Each chat's run is a durable workflow (`agentstream.dbos.DurableAgent`); its events go
to the same database, so a page or a `useChat` client reattaches by chat id or with
`Last-Event-ID` after a reload or after this server was killed and started again (DBOS
recovers the runs that were going on when it launches). Needs the `dbos` extra.
"""

from __future__ import annotations

import os
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


def durable_agent(agent: Agent, url: str, worker: str, transport: Any = None) -> tuple[Any, Any]:
    """The DurableAgent for the web's runs, and a context that launches DBOS around serving."""
    try:
        from dbos import DBOS

        from ..dbos import DurableAgent
    except ImportError as exc:
        raise SetupError(
            f"--durable needs the dbos extra: pip install 'agentstream[dbos]' ({exc})"
        ) from None
    DBOS(
        config={
            "name": "agentstream-web",
            "system_database_url": url,
            # Fixed, so that a restarted server recovers the runs of the one before it.
            "application_version": "agentstream-web-1",
            "executor_id": worker,
            "log_level": "WARNING",  # its INFO lines show the database URL
        }
    )
    durable = DurableAgent(agent, name="web", events_url=url, transport=transport)

    @asynccontextmanager
    async def launched() -> AsyncIterator[None]:
        DBOS.launch()  # recovers this worker's runs that a crash cut
        try:
            yield
        finally:
            DBOS.destroy()

    return durable, launched()
