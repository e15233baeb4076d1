"""The embedded default store: one SQLite file, through the standard library.

Every call runs in a worker thread (SQLite blocks), on a connection of that call's own,
so the event loop never waits on the disk and no connection crosses threads. Each save
is one committed transaction in WAL mode: a process killed at any moment leaves the
last committed document of every key intact.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import anyio.to_thread

from agentstream import SetupError

__all__ = ["SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agentstream_states (
    key TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    updated REAL NOT NULL
)
"""


class SQLiteStore:
    """Documents in the SQLite database at `path` (made if missing)."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        try:
            with closing(self._connect()) as db, db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise SetupError(f"cannot use {self.path} as a SQLite store: {exc}") from None

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)

    async def load(self, key: str) -> str | None:
        return await anyio.to_thread.run_sync(self._load, key)

    async def save(self, key: str, document: str) -> None:
        await anyio.to_thread.run_sync(self._save, key, document)

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(self._delete, key)

    def keys(self) -> list[str]:
        """Every key in the store, sorted (blocking: for tools and tests)."""
        with closing(self._connect()) as db:
            return [row[0] for row in db.execute("SELECT key FROM agentstream_states ORDER BY key")]

    def _load(self, key: str) -> str | None:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT document FROM agentstream_states WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else str(row[0])

    def _save(self, key: str, document: str) -> None:
        with closing(self._connect()) as db:
            db.execute(
                "INSERT INTO agentstream_states (key, document, updated) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET document = excluded.document, "
                "updated = excluded.updated",
                (key, document, time.time()),
            )

    def _delete(self, key: str) -> None:
        with closing(self._connect()) as db:
            db.execute("DELETE FROM agentstream_states WHERE key = ?", (key,))
