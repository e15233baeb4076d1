"""A session store on Postgres: the whole `agentstream.Store` protocol in one short class.

    pip install psycopg   # (the dbos extra brings it too)
    python examples/postgres_store.py postgresql://user@localhost/db

Without a URL it prints its usage and exits 2; a database it cannot reach is one line on
stderr and exit status 1.

Any class with async `load`, `save` and `delete` of one JSON document per key is a store;
a Redis one would be the same shape with GET, SET and DEL. `swap` (a conditional
UPDATE) lets sessions claim a run so that a doubled decision resumes it once; `purge`
bounds the table.
"""

from __future__ import annotations

import asyncio
import sys

try:
    import psycopg
except ModuleNotFoundError:
    sys.exit(
        "postgres_store needs psycopg: pip install psycopg  (or pip install 'agentstream[dbos]')"
    )

from agentstream import Agent, Session
from agentstream.testing import offline_model

_TABLE = """CREATE TABLE IF NOT EXISTS agentstream_states (
    key TEXT PRIMARY KEY, document TEXT NOT NULL, updated TIMESTAMPTZ NOT NULL DEFAULT now())"""


class PostgresStore:
    """Run states in a Postgres table, one row per key, each save one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def _connect(self) -> psycopg.AsyncConnection[tuple[str]]:
        return await psycopg.AsyncConnection.connect(self.url, autocommit=True)

    async def setup(self) -> None:
        async with await self._connect() as db:
            await db.execute(_TABLE)

    async def load(self, key: str) -> str | None:
        async with await self._connect() as db:
            cursor = await db.execute(
                "SELECT document FROM agentstream_states WHERE key = %s", (key,)
            )
            row = await cursor.fetchone()
        return None if row is None else row[0]

    async def save(self, key: str, document: str) -> None:
        async with await self._connect() as db:
            await db.execute(
                "INSERT INTO agentstream_states (key, document) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET document = EXCLUDED.document, updated = now()",
                (key, document),
            )

    async def delete(self, key: str) -> None:
        async with await self._connect() as db:
            await db.execute("DELETE FROM agentstream_states WHERE key = %s", (key,))

    async def swap(self, key: str, expected: str | None, document: str) -> bool:
        """Save `document` only if `key` still holds `expected` (`None`: nothing)."""
        async with await self._connect() as db:
            if expected is None:
                cursor = await db.execute(
                    "INSERT INTO agentstream_states (key, document) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO NOTHING",
                    (key, document),
                )
            else:
                cursor = await db.execute(
                    "UPDATE agentstream_states SET document = %s, updated = now() "
                    "WHERE key = %s AND document = %s",
                    (document, key, expected),
                )
            return cursor.rowcount == 1

    async def purge(self, older_than: float) -> int:
        """Forget every document not saved for `older_than` seconds; how many went."""
        async with await self._connect() as db:
            cursor = await db.execute(
                "DELETE FROM agentstream_states WHERE updated < now() - make_interval(secs => %s)",
                (older_than,),
            )
            return cursor.rowcount


async def main(url: str) -> None:
    store = PostgresStore(url)
    await store.setup()
    session = Session(store, "example")
    agent = Agent(client=offline_model().async_client(), model="offline")
    for question in ("What's the weather in Paris?", "And what did I just ask?"):
        result = await agent.run(question, session=session)
        print(f"> {question}\n{result.output}")
    saved = await store.load("example")
    assert saved is not None
    assert not await store.swap("example", "stale", saved)  # only from what is there
    assert await store.swap("example", saved, saved)
    print(f"purged {await store.purge(older_than=30 * 86400)} old runs")
    await session.clear()


USAGE = (
    "usage: python examples/postgres_store.py POSTGRES_URL  (e.g. postgresql://user@localhost/db)"
)


def cli(argv: list[str]) -> int:
    """The script's exit status: 2 without exactly one URL, 1 if Postgres fails."""
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        asyncio.run(main(argv[0]))
    except psycopg.Error as exc:
        print(f"postgres_store: {type(exc).__name__}: {exc}".strip(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
