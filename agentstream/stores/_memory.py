"""A store in a dict: for tests, and for runs that need no durability."""

from __future__ import annotations

import time

__all__ = ["MemoryStore"]


class MemoryStore:
    """Keeps documents in this process's memory; they are gone when it ends."""

    def __init__(self) -> None:
        self.documents: dict[str, str] = {}
        self.saved_at: dict[str, float] = {}
        """When each key was last saved (epoch seconds)."""
        self.saves = 0
        """How many times `save` was called (tests count checkpoints with it)."""

    async def load(self, key: str) -> str | None:
        return self.documents.get(key)

    async def save(self, key: str, document: str) -> None:
        self.saves += 1
        self.documents[key] = document
        self.saved_at[key] = time.time()

    async def delete(self, key: str) -> None:
        self.documents.pop(key, None)
        self.saved_at.pop(key, None)

    async def swap(self, key: str, expected: str | None, document: str) -> bool:
        """Save `document` only if `key` still holds `expected` (`None`: nothing).

        No await between the check and the write: atomic within the event loop.
        """
        if self.documents.get(key) != expected:
            return False
        await self.save(key, document)
        return True

    async def entries(self) -> list[tuple[str, float]]:
        """Every key with the time (epoch seconds) it was last saved, oldest first."""
        return sorted(self.saved_at.items(), key=lambda entry: entry[1])

    async def purge(self, older_than: float) -> int:
        """Forget every document not saved for `older_than` seconds; how many went."""
        cutoff = time.time() - older_than
        old = [key for key, at in self.saved_at.items() if at < cutoff]
        for key in old:
            await self.delete(key)
        return len(old)
