"""The embedded default store: one SQLite file, through the standard library.

Every call runs in a worker thread (SQLite blocks), on a connection of that call's own,
so the event loop never waits on the disk and no connection crosses threads. Each save
is one committed transaction in WAL mode: a process killed at any moment leaves the
last committed document of every key intact. The file (and SQLite's -wal and -shm
files, which take its mode) is made readable by its owner alone: it holds whole
conversations.
"""

from __future__ import annotations

import os
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


_MONTH = 30 * 86400.0


class SQLiteStore:
    """Documents in the SQLite database at `path` (made if missing, mode 0600).

    `retention`: documents not saved for that many seconds (30 days unless set; `None`
    keeps everything) are purged when the store is opened; `purge()` does it on demand.
    """

    def __init__(
        self, path: str | Path, *, timeout: float = 30.0, retention: float | None = _MONTH
    ) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.retention = retention
        try:
            # Made before SQLite opens it, so it is never world-readable, not even briefly.
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            with closing(self._connect()) as db, db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(_SCHEMA)
            if retention is not None:
                self._purge(retention)
        except (OSError, sqlite3.Error) as exc:
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

    async def swap(self, key: str, expected: str | None, document: str) -> bool:
        """Save `document` only if `key` still holds `expected` (`None`: nothing); atomic
        across connections and processes (one `BEGIN IMMEDIATE` transaction)."""
        return await anyio.to_thread.run_sync(self._swap, key, expected, document)

    async def entries(self) -> list[tuple[str, float]]:
        """Every key with the time (epoch seconds) it was last saved, oldest first."""
        return await anyio.to_thread.run_sync(self._entries)

    async def purge(self, older_than: float) -> int:
        """Forget every document not saved for `older_than` seconds; how many went.

        The file is vacuumed afterwards, so it shrinks rather than keeping the space.
        """
        return await anyio.to_thread.run_sync(self._purge, older_than)

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

    def _swap(self, key: str, expected: str | None, document: str) -> bool:
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")  # the write lock first: no one changes it meanwhile
            try:
                row = db.execute(
                    "SELECT document FROM agentstream_states WHERE key = ?", (key,)
                ).fetchone()
                if (None if row is None else str(row[0])) != expected:
                    return False
                db.execute(
                    "INSERT INTO agentstream_states (key, document, updated) VALUES (?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET document = excluded.document, "
                    "updated = excluded.updated",
                    (key, document, time.time()),
                )
            finally:
                db.execute("COMMIT")
        return True

    def _delete(self, key: str) -> None:
        with closing(self._connect()) as db:
            db.execute("DELETE FROM agentstream_states WHERE key = ?", (key,))

    def _entries(self) -> list[tuple[str, float]]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT key, updated FROM agentstream_states ORDER BY updated")
            return [(str(key), float(updated)) for key, updated in rows]

    def _purge(self, older_than: float) -> int:
        with closing(self._connect()) as db:
            gone = db.execute(
                "DELETE FROM agentstream_states WHERE updated < ?", (time.time() - older_than,)
            ).rowcount
            if gone:
                db.execute("VACUUM")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(gone)
