"""Fixtures shared by every test: the real stack, and per-test isolation on it.

Session:
- `stack` (`StackEndpoints`): Kafka's bootstrap address and PostgreSQL's DSN of a running stack.
  Taken from `PODIUM_KAFKA_BOOTSTRAP` / `PODIUM_DATABASE_URL` when both are set, else from the
  state file of `podium stack up` (`.podium/stack.json`, or `PODIUM_STACK_DIR`); when that stack
  does not answer it is started in-process with `podium.stack.up`. When it can be neither
  reached nor started, every test that needs it FAILS with the reason (never skips).

Per test:
- `kafka_settings`: a `KafkaSettings` on that broker, as the stack's admin (a super user), with a
  unique `topic_prefix` (`t<8 hex>`) and 3 partitions per topic; the topics under the prefix are
  deleted after the test.
- `topic_names`: `TopicNames(prefix=kafka_settings.topic_prefix)`.
- `database_url`: the DSN of the stack's database.
- `pg_schema`: a unique schema (`s<8 hex>`) created before the test and dropped after it.
- `pg_pool`: an asyncpg pool whose connections have `search_path` set to `pg_schema`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from podium.core.settings import KafkaSettings
from podium.stack import StackError, StackSettings, load_state, up
from podium.stack._kafka import admin_settings, metadata_ok
from tests.helpers import TIMEOUT_SCALE, scaled
from topics.kafka import make_admin
from topics.names import TopicNames

ROOT = Path(__file__).resolve().parent.parent
OFFLINE_ENDPOINT = ROOT / "manifests" / "demo" / "research-pipeline-offline-endpoint.yaml"
"""The research pipeline's endpoint served by the mock provider (what `make demo` applies)."""
os.environ.setdefault("PODIUM_STACK_DIR", str(ROOT / ".podium"))


@dataclass(frozen=True, slots=True)
class StackEndpoints:
    """Where the tests find the stack."""

    bootstrap: str
    database_url: str
    kafka: KafkaSettings
    """The broker as the stack's admin (super user), or as `PODIUM_KAFKA_*` says."""


async def _postgres_answers(dsn: str) -> str | None:
    """None when a connection succeeds, else the reason."""
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


def _fail(reason: str) -> None:
    pytest.fail(
        f"the Kafka + PostgreSQL stack is not available: {reason}. "
        "Start it with `make stack-up` (or `.venv/bin/podium stack up`), or point "
        "PODIUM_KAFKA_BOOTSTRAP and PODIUM_DATABASE_URL at a running Kafka and PostgreSQL.",
        pytrace=False,
    )


@pytest.fixture(scope="session")
async def stack() -> StackEndpoints:
    """The running stack (see the module docstring); starts it when it is down."""
    bootstrap = os.environ.get("PODIUM_KAFKA_BOOTSTRAP", "")
    dsn = os.environ.get("PODIUM_DATABASE_URL", "")
    kafka = KafkaSettings() if bootstrap else None
    if not (bootstrap and dsn):
        state = load_state()
        reachable = (
            state.kafka is not None
            and state.kafka.sasl
            and state.postgres is not None
            and metadata_ok(admin_settings(state.kafka))
            and await _postgres_answers(state.postgres.dsn) is None
        )
        if not reachable:
            try:
                state = up(StackSettings()).state
            except (StackError, OSError) as exc:
                _fail(f"`podium stack up` failed: {exc}")
        assert state.kafka is not None and state.postgres is not None
        bootstrap = bootstrap or state.kafka.bootstrap
        kafka = kafka or admin_settings(state.kafka)
        dsn = dsn or state.postgres.dsn
    assert kafka is not None
    if not metadata_ok(kafka):
        _fail(f"no Kafka broker answers a metadata request at {bootstrap}")
    problem = await _postgres_answers(dsn)
    if problem is not None:
        _fail(f"cannot connect to PostgreSQL at {dsn}: {problem}")
    return StackEndpoints(bootstrap=bootstrap, database_url=dsn, kafka=kafka)


@pytest.fixture
async def kafka_settings(stack: StackEndpoints) -> AsyncIterator[KafkaSettings]:
    """`KafkaSettings` with a unique topic prefix and 3 partitions; its topics go afterwards."""
    settings = stack.kafka.model_copy(
        update={"topic_prefix": f"t{uuid.uuid4().hex[:8]}", "partitions": 3}
    )
    yield settings
    admin = make_admin(stack.kafka)
    try:
        await admin.start()
        mine = [t for t in await admin.list_topics() if t.startswith(f"{settings.topic_prefix}.")]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


@pytest.fixture
def topic_names(kafka_settings: KafkaSettings) -> TopicNames:
    """The topic and group names under the test's unique prefix."""
    return TopicNames(prefix=kafka_settings.topic_prefix)


@pytest.fixture
def database_url(stack: StackEndpoints) -> str:
    """The DSN of the stack's database (`podium`)."""
    return stack.database_url


@pytest.fixture
async def pg_schema(database_url: str) -> AsyncIterator[str]:
    """A unique, empty schema for one test; dropped with everything in it afterwards."""
    schema = f"s{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        yield schema
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def pg_pool(database_url: str, pg_schema: str) -> AsyncIterator[asyncpg.Pool]:
    """An asyncpg pool whose connections work in `pg_schema` (`search_path`)."""
    pool = await asyncpg.create_pool(
        database_url, min_size=1, max_size=4, server_settings={"search_path": pg_schema}
    )
    try:
        yield pool
    finally:
        await pool.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that needs the stack (the `stack` fixture, directly or through another fixture) is
    an integration test, marked or not: `make test-unit` (`-m "not integration"`) leaves it out,
    and no unit test can reach Kafka or PostgreSQL by accident.

    Each test's timeout (its `timeout` marker, else the ini's) is multiplied by the same
    `TIMEOUT_SCALE` as the deadlines of `tests.helpers`, so that a scaled wait fits in it."""
    default = float(config.getini("timeout") or 0)
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
        marker = item.get_closest_marker("timeout")
        seconds = float(marker.args[0]) if marker is not None and marker.args else default
        if seconds > 0 and TIMEOUT_SCALE != 1:
            item.add_marker(pytest.mark.timeout(scaled(seconds)), append=False)
