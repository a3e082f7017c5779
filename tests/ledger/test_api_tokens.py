"""API tokens have a lifetime: they can be listed (never shown again), revoked, and expire; a
revoked or expired token is a 401 like an unknown one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from ledger.api import create_app
from ledger.auth import Scope, create_token, list_tokens, revoke_token
from podium.cli import app
from podium.core.errors import PermanentError
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(ledger_pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(ledger_pool))
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as http:
        yield http


async def status_with(client: httpx.AsyncClient, token: str) -> int:
    response = await client.get("/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def test_a_revoked_token_is_401(client: httpx.AsyncClient, ledger_pool: asyncpg.Pool) -> None:
    async with ledger_pool.acquire() as conn:
        token = await create_token(conn, "ops", [Scope.AUDIT_READ])
        assert await status_with(client, token) == 200
        revoked, newly = await revoke_token(conn, "ops")
    assert newly and revoked.name == "ops" and revoked.revoked_at is not None
    assert await status_with(client, token) == 401


async def test_an_expired_token_is_401(
    client: httpx.AsyncClient, ledger_pool: asyncpg.Pool
) -> None:
    async with ledger_pool.acquire() as conn:
        token = await create_token(
            conn, "brief", [Scope.AUDIT_READ], expires_in=timedelta(seconds=1)
        )
        lasting = await create_token(
            conn, "long", [Scope.AUDIT_READ], expires_in=timedelta(days=30)
        )
    assert await status_with(client, lasting) == 200

    async def refused() -> bool:
        return await status_with(client, token) == 401

    await wait_until(refused, timeout=10, interval=0.2)
    assert await status_with(client, lasting) == 200


async def test_tokens_are_listed_without_the_token(
    client: httpx.AsyncClient, ledger_pool: asyncpg.Pool
) -> None:
    before = datetime.now(UTC)
    async with ledger_pool.acquire() as conn:
        used = await create_token(conn, "used", [Scope.SPEND_READ, Scope.AUDIT_READ])
        await create_token(conn, "idle", [Scope.SPEND_READ], expires_in=timedelta(hours=12))
        assert await status_with(client, used) == 200
        listed = {t.name: t for t in await list_tokens(conn)}
        rows = await conn.fetch("SELECT token_hash FROM api_tokens")
    assert set(listed) == {"used", "idle"}
    assert listed["used"].scopes == ["audit:read", "spend:read"]
    assert listed["used"].expires_at is None and listed["used"].revoked_at is None
    assert listed["used"].last_used_at is not None and listed["idle"].last_used_at is None
    expires = listed["idle"].expires_at
    assert expires is not None
    assert before + timedelta(hours=12) <= expires <= datetime.now(UTC) + timedelta(hours=12)
    assert listed["used"].id != listed["idle"].id
    shown = json.dumps([t.as_dict() for t in listed.values()], default=str)
    assert used not in shown and not any(r["token_hash"] in shown for r in rows)


async def test_revoke_by_name_or_by_id(ledger_pool: asyncpg.Pool) -> None:
    async with ledger_pool.acquire() as conn:
        await create_token(conn, "cli", [Scope.AUDIT_READ])
        await create_token(conn, "cli", [Scope.AUDIT_READ])
        with pytest.raises(PermanentError, match=r"2 tokens are named 'cli' \(ids \d+, \d+\)"):
            await revoke_token(conn, "cli")
        ids = sorted(t.id for t in await list_tokens(conn))
        first, newly = await revoke_token(conn, str(ids[0]))
        assert newly and first.id == ids[0]
        again, newly = await revoke_token(conn, str(ids[0]))
        assert not newly and again.revoked_at == first.revoked_at
        second, newly = await revoke_token(conn, "cli")
        assert newly and second.id == ids[1]
        with pytest.raises(PermanentError, match="no token is named or numbered 'nobody'"):
            await revoke_token(conn, "nobody")
        assert all(t.revoked_at for t in await list_tokens(conn))


async def test_a_token_needs_a_lifetime_in_the_future(ledger_pool: asyncpg.Pool) -> None:
    async with ledger_pool.acquire() as conn:
        for bad in (timedelta(0), timedelta(seconds=-5), timedelta(days=999999999)):
            with pytest.raises(ValueError, match="expire"):
                await create_token(conn, "x", [Scope.AUDIT_READ], expires_in=bad)
        assert await list_tokens(conn) == []


def test_token_commands_create_list_and_revoke(
    database_url: str, ledger_pool: asyncpg.Pool, pg_schema: str
) -> None:
    env = {"PODIUM_DATABASE_URL": database_url, "PODIUM_LEDGER_SCHEMA": pg_schema}
    runner = CliRunner()
    scopes = ["--scope", "audit:read"]
    created = runner.invoke(
        app, ["token", "create", "--name", "ci", *scopes, "--expires-in", "30d"], env=env
    )
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("pdm_")
    runner.invoke(
        app, ["token", "create", "--name", "ops", *scopes, "--expires-in", "12h"], env=env
    )
    bad = runner.invoke(app, ["token", "create", *scopes, "--expires-in", "1y"], env=env)
    assert bad.exit_code == 2 and "--expires-in" in bad.output

    listed = runner.invoke(app, ["token", "list", "-o", "json"], env=env)
    assert listed.exit_code == 0, listed.output
    tokens = {t["name"]: t for t in json.loads(listed.stdout)}
    assert set(tokens) == {"ci", "ops"} and token not in listed.stdout
    assert set(tokens["ci"]) == {
        "id",
        "name",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    }
    days = datetime.fromisoformat(tokens["ci"]["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=29) < days <= timedelta(days=30)
    table = runner.invoke(app, ["token", "list"], env=env)
    assert table.exit_code == 0 and "ops" in table.stdout and token not in table.stdout

    by_name = runner.invoke(app, ["token", "revoke", "ci"], env=env)
    assert by_name.exit_code == 0 and "revoked" in by_name.output, by_name.output
    by_id = runner.invoke(app, ["token", "revoke", str(tokens["ops"]["id"])], env=env)
    assert by_id.exit_code == 0 and "ops" in by_id.output, by_id.output
    after = json.loads(runner.invoke(app, ["token", "list", "-o", "json"], env=env).stdout)
    assert all(t["revoked_at"] for t in after)
