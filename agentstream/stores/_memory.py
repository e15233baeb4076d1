"""A store in a dict: for tests, and for runs that need no durability."""

from __future__ import annotations

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps documents in this process's memory; they are gone when it ends."""

    def __init__(self) -> None:
        self.documents: dict[str, str] = {}
        self.saves = 0
        """How many times `save` was called (tests count checkpoints with it)."""

    async def load(self, key: str) -> str | None:
        return self.documents.get(key)

    async def save(self, key: str, document: str) -> None:
        self.saves += 1
        self.documents[key] = document

    async def delete(self, key: str) -> None:
        self.documents.pop(key, None)
