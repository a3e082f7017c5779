"""Versioned SQL migrations (`ledger/migrations/NNNN_name.sql`), applied at start.

All pending files are applied in one transaction under an advisory lock keyed by the schema, so
two ledgers starting together apply them once, and a second start applies nothing. A file that
was changed after it was applied stops the start (its checksum no longer matches).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from podium.core.errors import PermanentError

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    """The migration files shipped with the package, in version order."""
    found = []
    for entry in resources.files("ledger.migrations").iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    return found


def lock_key(schema: str) -> int:
    """A 64-bit advisory lock key for the schema's migrations."""
    digest = hashlib.sha256(f"podium.ledger.migrate:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def migrate(conn: asyncpg.Connection, schema: str) -> list[int]:
    """Apply the pending migrations to `schema`; return the versions applied."""
    s = quote_ident(schema)
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key(schema))
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {s}.ledger_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await conn.fetch(f"SELECT version, name, checksum FROM {s}.ledger_migrations")
        done = {row["version"]: row for row in rows}
        await conn.execute(f"SET LOCAL search_path TO {s}, public")
        for migration in available():
            row = done.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise PermanentError(
                        f"ledger migration {migration.version:04d}_{migration.name}.sql changed "
                        f"after it was applied to schema {schema!r}; add a new migration instead"
                    )
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {s}.ledger_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            applied_now.append(migration.version)
    if applied_now:
        log.info("applied ledger migrations %s to schema %s", applied_now, schema)
    return applied_now
