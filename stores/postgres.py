"""The PostgreSQL side of the stores: one bounded connection pool per process, and migrations.

Every replica of a fleet opens the same database, so the schema is brought up to date by whichever
process starts first: the numbered SQL files in `stores/migrations/` (`0001_initial.sql`, ...) are
applied in order, each in its own transaction with its row in `schema_migrations`, under a
transaction-level advisory lock, so processes starting together apply each file exactly once.

psycopg 3 serves both sides of the process: the transcript writer thread and the notes tool's
worker threads use its synchronous connections, and the event loop reaches the same pool through
`asyncio.to_thread`, so one pool with one bound serves both. The pool is bounded (`max_size`
connections, `max_waiting` callers queued); a caller who cannot get a connection in `timeout`
seconds gets `Unavailable`, which the HTTP side answers with a 503.

The URL carries a password: it is never logged; `redacted(url)` is what log lines show.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import psycopg
from loguru import logger
from psycopg_pool import ConnectionPool, PoolTimeout, TooManyRequests

MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
ADVISORY_LOCK_KEY = 0x67_6C_61_6D  # "glam": this project's migrations, nothing else takes it


class Unavailable(RuntimeError):
    """The database could not be reached, or every connection is busy: try again shortly."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The migration files shipped in `stores/migrations`, in version order."""
    found = []
    for entry in resources.files("stores.migrations").iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration versions must run 1, 2, 3, ... without gaps: {versions}")
    return found


def migrate(conn: psycopg.Connection) -> list[int]:
    """Apply the migrations this database lacks; the versions applied now (often none)."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for migration in migrations():
            if migration.version in done:
                continue
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            applied.append(migration.version)
    return applied


def redacted(url: str) -> str:
    """The URL without its password, for log lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Database:
    """A bounded pool of connections to one PostgreSQL database, migrated when opened.

    Args:
        url: A `postgresql://` URL.
        max_size: Connections opened at most.
        max_waiting: Callers waiting for a connection at most; one more gets `Unavailable`.
        timeout: Seconds a caller waits for a connection before `Unavailable`.
    """

    def __init__(
        self, url: str, *, max_size: int = 10, max_waiting: int = 100, timeout: float = 10.0
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            max_waiting=max_waiting,
            timeout=timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))},
            open=False,
            name="stores",
        )

    def open(self) -> list[int]:
        """Connect and apply missing migrations; the versions applied. `Unavailable` if the
        server cannot be reached within `timeout`."""
        try:
            self.pool.open(wait=True, timeout=self.timeout)
        except PoolTimeout as exc:
            self.pool.close()
            raise Unavailable(
                f"PostgreSQL at {redacted(self.url)} did not answer within {self.timeout:g} s"
            ) from exc
        with self.connection() as conn:
            applied = migrate(conn)
        if applied:
            logger.info(f"database {redacted(self.url)}: applied migrations {applied}")
        return applied

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection from the pool (autocommit; `conn.transaction()` for several writes)."""
        try:
            with self.pool.connection() as conn:
                yield conn
        except (PoolTimeout, TooManyRequests) as exc:
            raise Unavailable(f"no database connection free: {exc}") from exc
        except psycopg.OperationalError as exc:
            raise Unavailable(f"the database could not be reached: {exc}") from exc

    def close(self) -> None:
        self.pool.close()
