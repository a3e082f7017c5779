"""The local stack's credentials: PostgreSQL wants its password, every secret is its owner's."""

from __future__ import annotations

import asyncio
import stat
import uuid

import asyncpg
import pytest
from typer.testing import CliRunner

from podium import environment
from podium.cli import app
from podium.stack import credentials, load_state
from tests.conftest import StackEndpoints
from topics.kafka import make_producer

pytestmark = pytest.mark.integration


async def test_postgres_refuses_a_connection_without_the_password(stack: StackEndpoints) -> None:
    state = load_state()
    assert state.postgres is not None
    port = state.postgres.port
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/podium", timeout=10)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(f"postgresql://postgres:wrong@127.0.0.1:{port}/podium", timeout=10)
    conn = await asyncpg.connect(environment.database_settings().url, timeout=10)
    await conn.close()


def test_every_secret_file_is_readable_by_its_owner_only(stack: StackEndpoints) -> None:
    folder = credentials.secrets_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = sorted(folder.iterdir())
    assert credentials.postgres_password_file() in files
    assert all(credentials.password_file(user) in files for user in credentials.kafka_users())
    assert credentials.sealing_key_file() in files
    assert credentials.sealing_public_key_file() in files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_each_service_role_runs_as_its_own_principal(stack: StackEndpoints) -> None:
    users = {environment.kafka_settings(role).sasl_username for role in ("actor", "ledger")}
    assert users == {"podium-actor", "podium-ledger"}
    assert environment.kafka_settings().sasl_username == "podium-operator"


async def test_stack_agent_users_gives_an_agent_a_principal_its_actor_connects_as(
    stack: StackEndpoints,
) -> None:
    agent = f"t{uuid.uuid4().hex[:8]}"
    password = credentials.password_file(credentials.agent_username(agent))
    try:
        done = await asyncio.to_thread(CliRunner().invoke, app, ["stack", "agent-users", agent])
        assert done.exit_code == 0, done.output
        assert f"principal User:podium-actor-{agent}" in done.output
        assert stat.S_IMODE(password.stat().st_mode) == 0o600
        assert agent in credentials.agents_with_users()
        mine = environment.kafka_settings("actor", agent=agent)
        assert mine.sasl_username == f"podium-actor-{agent}"
        assert environment.kafka_settings("actor", agent="other").sasl_username == "podium-actor"
        # the broker knows the new user: it authenticates
        producer = make_producer(mine)
        try:
            await producer.start()
        finally:
            await producer.stop()
    finally:
        password.unlink(missing_ok=True)

    refused = await asyncio.to_thread(CliRunner().invoke, app, ["stack", "agent-users", "a/b"])
    assert refused.exit_code == 2
    assert "cannot be used in a topic name" in refused.output
