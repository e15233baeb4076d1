"""Stores for sessions and checkpoints: in memory, and the embedded default on SQLite.

Both follow `agentstream.Store` (async `load`, `save`, `delete` of one JSON document per
key), so `Session(SQLiteStore("chat.db"), "alice")` keeps a conversation across runs
and processes. This package imports only the public core; the core never imports it.
"""

from __future__ import annotations

from ._memory import MemoryStore as MemoryStore
from ._sqlite import SQLiteStore as SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore"]
