"""API bearer tokens: random, shown once, stored as SHA-256, each with a set of scopes."""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass

import asyncpg

TOKEN_PREFIX = "pdm_"


class Scope(enum.StrEnum):
    AUDIT_READ = "audit:read"
    SPEND_READ = "spend:read"
    APPROVALS_WRITE = "approvals:write"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's name and scopes."""

    name: str
    scopes: frozenset[str]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_token(conn: asyncpg.Connection, name: str, scopes: list[Scope]) -> str:
    """Make a token with these scopes; return it (the only time it is seen)."""
    if not scopes:
        raise ValueError("a token needs at least one scope")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO api_tokens (token_hash, name, scopes) VALUES ($1, $2, $3)",
        hash_token(token),
        name,
        sorted({str(s) for s in scopes}),
    )
    return token


async def lookup(conn: asyncpg.Connection, token: str) -> Principal | None:
    row = await conn.fetchrow(
        "SELECT name, scopes FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        hash_token(token),
    )
    if row is None:
        return None
    return Principal(row["name"], frozenset(row["scopes"]))
