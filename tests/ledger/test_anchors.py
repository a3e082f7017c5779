"""The audit trail proves itself: signed anchors in Kafka against an owner who rewrites the
database (real Kafka and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from ledger.anchoring import read_anchors
from ledger.anchors import Anchors, public_hex
from ledger.audit import VerifyReport, verify
from ledger.chain import GENESIS, canonical, link_hash
from ledger.settings import LedgerSettings
from podium import composition
from podium.cli import app
from podium.core.settings import DatabaseSettings, KafkaSettings
from tests.helpers import kafka_env, wait_until
from tests.ledger.conftest import task_events
from topics.codec import encode
from topics.kafka import ensure_topics, make_producer
from topics.messages import Event
from topics.names import TopicNames

pytestmark = pytest.mark.integration

TASKS = ("t-anc-1", "t-anc-2", "t-anc-3")


@dataclass
class Anchored:
    """A ledger that stored three tasks and anchored them, and an owner's connection to it."""

    owner: asyncpg.Connection
    kafka: KafkaSettings
    names: TopicNames
    key: Ed25519PrivateKey
    events: int

    async def anchors(self) -> Anchors:
        return await read_anchors(self.kafka, self.names, self.key.public_key())

    async def verify(self, task_id: str | None = None) -> VerifyReport:
        return await verify(self.owner, task_id, await self.anchors())


@pytest.fixture
async def anchored(
    kafka_settings: KafkaSettings,
    topic_names: TopicNames,
    ledger_settings: LedgerSettings,
    database_url: str,
    ledger_pool: asyncpg.Pool,
    pg_schema: str,
) -> AsyncIterator[Anchored]:
    key = Ed25519PrivateKey.generate()
    settings = LedgerSettings(
        **{
            **ledger_settings.model_dump(by_alias=True),
            "anchor_key": key.private_bytes_raw().hex(),
            "anchor_interval_s": 0.2,
        }
    )
    events = [e for task in TASKS for e in task_events(task)]
    await ensure_topics(kafka_settings, [topic_names.events, topic_names.results])
    producer = make_producer(kafka_settings)
    await producer.start()
    try:
        for e in events:
            await producer.send(topic_names.events, encode(e), key=e.task_id.encode())
        await producer.flush()
    finally:
        await producer.stop()
    service = composition.ledger_service(
        settings, DatabaseSettings(url=database_url), kafka_settings, record_api_url=False
    )
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    try:
        await wait_until(lambda: _count(ledger_pool, len(events)), timeout=60)
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
    assert service.anchorer is not None and service.anchorer.published >= len(TASKS) + 1
    owner = await asyncpg.connect(
        database_url, server_settings={"search_path": pg_schema, "TimeZone": "UTC"}
    )
    try:
        yield Anchored(owner, kafka_settings, topic_names, key, len(events))
    finally:
        await owner.close()


async def _count(pool: asyncpg.Pool, expected: int) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM events") >= expected)


async def _as_owner(conn: asyncpg.Connection, sql: str, *args: object) -> None:
    """The database owner, with the append-only triggers switched off."""
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql, *args)


async def _rechain(conn: asyncpg.Connection, task_id: str) -> None:
    """Recompute a task's hashes and head after its rows were changed, as an owner covering
    their tracks would."""
    prev = GENESIS
    rows = await conn.fetch(
        "SELECT event_id, seq, body FROM events WHERE task_id = $1 ORDER BY seq", task_id
    )
    for row in rows:
        new = link_hash(prev, row["body"].encode())
        await _as_owner(
            conn,
            "UPDATE events SET prev_hash = $1, hash = $2 WHERE event_id = $3",
            prev,
            new,
            row["event_id"],
        )
        prev = new
    await _as_owner(
        conn,
        "UPDATE chain_heads SET seq = $1, hash = $2 WHERE task_id = $3",
        rows[-1]["seq"],
        prev,
        task_id,
    )


async def _fix_rollups(conn: asyncpg.Connection) -> None:
    """Recompute the rollups from the rewritten events, so they agree with them."""
    await conn.execute(
        "UPDATE tasks t SET cost_usd = (SELECT coalesce(sum((data->>'cost_usd')::numeric), 0)"
        " FROM events e WHERE e.task_id = t.task_id AND e.type = 'model.called')"
    )
    await conn.execute(
        "UPDATE spend_hourly s SET cost_usd = (SELECT coalesce(sum((data->>'cost_usd')::numeric),"
        " 0) FROM events e WHERE e.type = 'model.called' AND date_trunc('hour', e.at) = s.hour"
        " AND e.system = s.system AND e.agent = s.agent AND e.data->>'model' = s.model)"
    )


async def test_a_clean_ledger_verifies_against_its_anchors(anchored: Anchored) -> None:
    report = await anchored.verify()
    assert report.ok, (report.breaks, report.problems)
    assert report.anchored_tasks == len(TASKS) and report.high_water == anchored.events
    assert report.events == anchored.events


async def test_zeroed_costs_with_rehashed_chains_are_caught(anchored: Anchored) -> None:
    conn = anchored.owner
    calls = await conn.fetch(
        "SELECT event_id, task_id, body FROM events WHERE type = 'model.called'"
        " AND task_id = ANY($1::text[]) ORDER BY task_id, seq",
        list(TASKS[:2]),
    )
    assert len(calls) == 4
    for row in calls:
        ev = msgspec.json.decode(row["body"], type=Event)
        zeroed = msgspec.structs.replace(ev, data={**ev.data, "cost_usd": 0.0})
        await _as_owner(
            conn,
            "UPDATE events SET body = $1, data = $2::jsonb WHERE event_id = $3",
            canonical(zeroed).decode(),
            msgspec.json.encode(zeroed.data).decode(),
            row["event_id"],
        )
    for task in TASKS[:2]:
        await _rechain(conn, task)
    await _fix_rollups(conn)
    # The chains and rollups agree with themselves: without anchors nothing shows.
    assert (await verify(conn)).ok
    report = await anchored.verify()
    assert sorted(b.task_id for b in report.breaks) == sorted(TASKS[:2])
    assert all("signed anchor" in b.problem for b in report.breaks)
    assert not report.problems


async def test_a_deleted_task_is_caught(anchored: Anchored) -> None:
    conn = anchored.owner
    victim = TASKS[1]
    for table in ("events", "chain_heads", "tasks"):
        await _as_owner(conn, f"DELETE FROM {table} WHERE task_id = $1", victim)
    spend = await conn.fetch("SELECT * FROM spend_hourly")
    await _as_owner(conn, "DELETE FROM spend_hourly")
    await _as_owner(
        conn,
        "INSERT INTO spend_hourly SELECT date_trunc('hour', at), system, agent, data->>'model',"
        " count(*), 0, sum((data->>'input_tokens')::bigint), sum((data->>'output_tokens')::bigint),"
        " 0, sum((data->>'cost_usd')::numeric) FROM events WHERE type = 'model.called'"
        " GROUP BY 1, 2, 3, 4",
    )
    assert spend
    report = await anchored.verify()
    assert not report.ok
    text = "\n".join(report.problems)
    assert f"task {victim}: anchored with" in text and "the task was deleted" in text
    assert "of the global sequence are missing" in text
    # Even without the anchors the gap in the global sequence shows.
    assert any("global sequence" in p for p in (await verify(conn)).problems)


async def test_a_reordered_row_is_caught(anchored: Anchored) -> None:
    conn = anchored.owner
    task = TASKS[0]
    await _as_owner(conn, "UPDATE events SET seq = 1000 WHERE task_id = $1 AND seq = 3", task)
    await _as_owner(conn, "UPDATE events SET seq = 3 WHERE task_id = $1 AND seq = 4", task)
    await _as_owner(conn, "UPDATE events SET seq = 4 WHERE task_id = $1 AND seq = 1000", task)
    await _rechain(conn, task)
    report = await anchored.verify()
    problems = [b.problem for b in report.breaks if b.task_id == task]
    assert any("reordered" in p for p in problems) and any("signed anchor" in p for p in problems)


async def test_rollups_that_disagree_with_the_events_are_caught(
    anchored: Anchored, ledger_pool: asyncpg.Pool
) -> None:
    # The ledger's own role may update rollups; verify recomputes them from the events.
    async with ledger_pool.acquire() as conn:
        await conn.execute("UPDATE tasks SET cost_usd = 0 WHERE task_id = $1", TASKS[2])
        await conn.execute("UPDATE spend_hourly SET calls = calls + 1")
    report = await anchored.verify()
    assert not report.breaks
    assert any(p.startswith(f"task {TASKS[2]}: rollup cost_usd is 0") for p in report.problems)
    assert any("rollup calls is" in p for p in report.problems)


async def test_audit_verify_command_exits_1_naming_the_problem(
    anchored: Anchored,
    database_url: str,
    pg_schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PODIUM_DATABASE_URL", database_url)
    for name, value in kafka_env(anchored.kafka).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PODIUM_LEDGER_SCHEMA", pg_schema)
    monkeypatch.setenv("PODIUM_LEDGER_ANCHOR_PUBLIC_KEY", public_hex(anchored.key.public_key()))
    runner = CliRunner()
    ok = await asyncio.to_thread(runner.invoke, app, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert f"ok: {len(TASKS)} chains, {anchored.events} events verified" in ok.output
    await _as_owner(anchored.owner, "DELETE FROM events WHERE task_id = $1", TASKS[0])
    await _as_owner(anchored.owner, "DELETE FROM chain_heads WHERE task_id = $1", TASKS[0])
    broken = await asyncio.to_thread(runner.invoke, app, ["audit", "verify"])
    assert broken.exit_code == 1
    assert f"task {TASKS[0]}: anchored with" in broken.output
