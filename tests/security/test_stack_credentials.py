"""The local stack's credentials: PostgreSQL wants its password, every secret is its owner's."""

from __future__ import annotations

import stat

import asyncpg
import pytest

from podium import environment
from podium.stack import credentials, load_state
from tests.conftest import StackEndpoints

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
