"""API bearer tokens: random, shown once, stored as SHA-256, each with a set of scopes.

A token may expire (`expires_in` when it is made) and may be revoked; either way it stops being
valid. Tokens are listed by number and name, never by the token or its hash.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from podium.core.errors import PermanentError

TOKEN_PREFIX = "pdm_"
LAST_USED_EVERY = timedelta(minutes=1)
"""How stale `last_used_at` may get: it is written at most this often per token, not per call."""


class Scope(enum.StrEnum):
    AUDIT_READ = "audit:read"
    SPEND_READ = "spend:read"
    APPROVALS_WRITE = "approvals:write"
    TASKS_WRITE = "tasks:write"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's name and scopes."""

    name: str
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is known of a token, without the token."""

    id: int
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_INFO = "id, name, scopes, created_at, expires_at, last_used_at, revoked_at"


def _info(row: asyncpg.Record) -> TokenInfo:
    return TokenInfo(**{**dict(row), "scopes": list(row["scopes"])})


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_token(
    conn: asyncpg.Connection,
    name: str,
    scopes: list[Scope],
    *,
    expires_in: timedelta | None = None,
) -> str:
    """Make a token with these scopes (valid for `expires_in`, else until revoked); return it
    (the only time it is seen)."""
    if not scopes:
        raise ValueError("a token needs at least one scope")
    expires_at = None
    if expires_in is not None:
        if expires_in <= timedelta(0):
            raise ValueError(f"a token expires after a positive duration, not {expires_in}")
        try:
            expires_at = datetime.now(UTC) + expires_in
        except OverflowError:
            raise ValueError(f"a token cannot expire {expires_in} from now (past 9999)") from None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO api_tokens (token_hash, name, scopes, expires_at) VALUES ($1, $2, $3, $4)",
        hash_token(token),
        name,
        sorted({str(s) for s in scopes}),
        expires_at,
    )
    return token


async def lookup(conn: asyncpg.Connection, token: str) -> Principal | None:
    """The holder of a valid token: known, not revoked, not expired (None otherwise)."""
    token_hash = hash_token(token)
    row = await conn.fetchrow(
        "SELECT name, scopes, last_used_at < now() - $2::interval IS NOT FALSE AS stale"
        " FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
        " AND (expires_at IS NULL OR expires_at > now())",
        token_hash,
        LAST_USED_EVERY,
    )
    if row is None:
        return None
    if row["stale"]:
        await conn.execute(
            "UPDATE api_tokens SET last_used_at = now() WHERE token_hash = $1", token_hash
        )
    return Principal(row["name"], frozenset(row["scopes"]))


async def list_tokens(conn: asyncpg.Connection) -> list[TokenInfo]:
    """Every token, revoked and expired ones included, oldest first."""
    rows = await conn.fetch(f"SELECT {_INFO} FROM api_tokens ORDER BY id")
    return [_info(r) for r in rows]


async def revoke_token(conn: asyncpg.Connection, name_or_id: str) -> tuple[TokenInfo, bool]:
    """Revoke the token with this number, else the one valid token with this name; return it
    and whether this call revoked it (False: it was revoked already)."""
    row = None
    if name_or_id.isascii() and name_or_id.isdigit() and len(name_or_id) < 19:
        row = await conn.fetchrow(f"SELECT {_INFO} FROM api_tokens WHERE id = $1", int(name_or_id))
    if row is None:
        named = await conn.fetch(
            f"SELECT {_INFO} FROM api_tokens WHERE name = $1 ORDER BY revoked_at IS NULL DESC, id",
            name_or_id,
        )
        valid = [r for r in named if r["revoked_at"] is None]
        if len(valid) > 1:
            ids = ", ".join(str(r["id"]) for r in valid)
            raise PermanentError(
                f"{len(valid)} tokens are named {name_or_id!r} (ids {ids}); "
                "revoke one by its id (see `podium token list`)"
            )
        if not named:
            raise PermanentError(
                f"no token is named or numbered {name_or_id!r}; see `podium token list`"
            )
        row = named[0]
    if row["revoked_at"] is not None:
        return _info(row), False
    revoked = await conn.fetchrow(
        f"UPDATE api_tokens SET revoked_at = now() WHERE id = $1 RETURNING {_INFO}", row["id"]
    )
    return _info(revoked), True
