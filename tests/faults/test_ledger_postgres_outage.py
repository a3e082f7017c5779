"""PostgreSQL stopped for 20 s under load: `podium ledger` waits, reconnects and catches up.

A private PostgreSQL cluster (the project's own stack code, in a temporary folder, on a free
port) holds the ledger's schema, so the shared cluster other tests use is never touched; Kafka
is the shared broker under a unique topic prefix. The ledger runs as a separate OS process, as in
production. Events are produced continuously for about 30 s; 8 s in, the cluster is stopped
(`pg_ctl stop -m fast`) for 20 s, then started again. Then: the ledger process is still alive,
every produced event is stored exactly once, every chain verifies and the spend rollups equal a
recomputation from the stored events.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from ledger.audit import verify
from podium.core.lifecycle import READY_LINE
from podium.core.settings import KafkaSettings
from podium.stack import StackSettings
from podium.stack import _postgres as postgres
from podium.stack._processes import tail
from podium.stack.state import STATE_DIR_ENV
from tests.conftest import ROOT
from tests.helpers import kafka_env, scaled, start_child, stop_children, wait_for_line
from tests.ledger.conftest import task_events
from topics.codec import encode
from topics.kafka import ensure_topics, make_producer
from topics.messages import Event
from topics.names import TopicNames

pytestmark = [pytest.mark.faults, pytest.mark.integration]

TASKS = 250  # 12 events each: 3,000 events
PRODUCE_S = 30.0
OUTAGE_AFTER_S = 8.0
OUTAGE_S = 20.0
SCHEMA = "ledger_outage"


@dataclass(frozen=True, slots=True)
class PrivatePostgres:
    settings: StackSettings
    home: Path
    data: Path
    dsn: str

    def stop(self) -> None:
        postgres.stop(self.data, self.settings)

    def start(self) -> None:
        with _stack_dir(self.home):
            postgres.start(self.settings)


@contextmanager
def _stack_dir(path: Path) -> Iterator[None]:
    """`podium.stack._postgres` keeps its cluster under the stack folder: point it elsewhere."""
    before = os.environ.get(STATE_DIR_ENV)
    os.environ[STATE_DIR_ENV] = str(path)
    try:
        yield
    finally:
        if before is None:
            del os.environ[STATE_DIR_ENV]
        else:
            os.environ[STATE_DIR_ENV] = before


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _private_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="podium-faults-pg-"))
    home.chmod(0o755)  # the server runs as an unprivileged user when the tests run as root
    return home


@pytest.fixture
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    """A PostgreSQL cluster of this test only; stopped and removed afterwards, whatever happens."""
    home = _private_home()
    settings = StackSettings(
        postgres_port=_free_port(), ready_timeout_s=scaled(60), stop_timeout_s=30
    )
    with _stack_dir(home):  # its password is in its own folder
        dsn = postgres.dsn(settings)
    cluster = PrivatePostgres(settings, home, home / "postgres" / "data", dsn)
    try:
        await asyncio.to_thread(cluster.start)
        yield cluster
    finally:
        try:
            await asyncio.to_thread(cluster.stop)
        finally:
            shutil.rmtree(home, ignore_errors=True)


@contextmanager
def ledger_process(env: dict[str, str], log_file: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`podium ledger` as its own OS process (group); SIGTERM (then SIGKILL) at the end."""
    with log_file.open("wb") as log:
        process = start_child(
            [str(ROOT / ".venv" / "bin" / "podium"), "ledger"],
            env=env,
            cwd=log_file.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        stop_children([process], grace_s=30)


async def produce_steadily(kafka: KafkaSettings, topic: str, events: list[Event]) -> None:
    """All the events, spread evenly over PRODUCE_S seconds (one task's events at a time)."""
    producer = make_producer(kafka)
    try:
        await producer.start()
        loop = asyncio.get_running_loop()
        start = loop.time()
        per_task = len(events) // TASKS
        for n in range(TASKS):
            for ev in events[n * per_task : (n + 1) * per_task]:
                await producer.send(topic, encode(ev), key=ev.task_id.encode())
            await producer.flush()
            pause = start + PRODUCE_S * (n + 1) / TASKS - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)  # pacing the load, not waiting for a condition
    finally:
        await producer.stop()


async def stored_count(dsn: str) -> int | None:
    """Events stored so far, or None while the cluster does not answer."""
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return None
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.events"))
    except asyncpg.PostgresError:
        return None  # the ledger has not migrated its schema yet
    finally:
        await conn.close()


@pytest.mark.timeout(300)
async def test_ledger_waits_for_postgres_and_catches_up(
    kafka_settings: KafkaSettings, topic_names: TopicNames, private_postgres: PrivatePostgres
) -> None:
    pg = private_postgres
    await ensure_topics(kafka_settings, [topic_names.events, topic_names.results])
    events = [e for n in range(TASKS) for e in task_events(f"outage-{n}")]
    env = {
        **os.environ,
        STATE_DIR_ENV: str(pg.home),  # never the shared stack's state file
        "PODIUM_DATABASE_URL": pg.dsn,
        **kafka_env(kafka_settings),
        "PODIUM_LEDGER_SCHEMA": SCHEMA,
        "PODIUM_LEDGER_API_PORT": "0",
        "PODIUM_LEDGER_BATCH_SIZE": "500",
        "PODIUM_LEDGER_RECONNECT_MAX_S": "1",
        "PODIUM_LEDGER_ANCHOR_KEY": "22" * 32,
    }
    log_file = pg.home / "ledger.log"
    loop = asyncio.get_running_loop()

    def alive(process: subprocess.Popen[bytes]) -> None:
        assert process.poll() is None, (
            f"podium ledger exited with {process.returncode}:\n{tail(log_file, 40)}"
        )

    with ledger_process(env, log_file) as ledger:
        await wait_for_line(log_file, READY_LINE, ledger)  # the clock starts once it serves
        load_started = loop.time()
        producing = asyncio.create_task(
            produce_steadily(kafka_settings, topic_names.events, events)
        )
        try:
            # The ledger stores while the load runs.
            deadline = loop.time() + scaled(60)
            while not (await stored_count(pg.dsn) or 0) > 0:
                alive(ledger)
                assert loop.time() < deadline, (
                    f"nothing stored in {scaled(60)} s:\n{tail(log_file, 40)}"
                )
                await asyncio.sleep(0.2)
            await asyncio.sleep(max(0.0, load_started + OUTAGE_AFTER_S - loop.time()))

            # PostgreSQL goes away for OUTAGE_S seconds, under load.
            before_outage = await stored_count(pg.dsn) or 0
            down_at = time.monotonic()
            await asyncio.to_thread(pg.stop)
            while time.monotonic() - down_at < OUTAGE_S:
                alive(ledger)
                assert await stored_count(pg.dsn) is None, "PostgreSQL answers while stopped"
                await asyncio.sleep(1.0)
            await asyncio.to_thread(pg.start)
            up_at = time.monotonic()
            downtime = up_at - down_at

            # It catches up: everything produced is stored, once.
            await asyncio.wait_for(producing, timeout=scaled(PRODUCE_S + 60))
            deadline = loop.time() + scaled(120)
            while (stored := await stored_count(pg.dsn) or 0) < len(events):
                alive(ledger)
                assert loop.time() < deadline, (
                    f"only {stored} of {len(events)} events stored {scaled(120)} s after "
                    f"PostgreSQL came back:\n{tail(log_file, 40)}"
                )
                await asyncio.sleep(0.2)
            caught_up = time.monotonic() - up_at
            alive(ledger)
        finally:
            if not producing.done():
                producing.cancel()
                await asyncio.gather(producing, return_exceptions=True)

    failed_writes = log_file.read_text(errors="replace").count("ledger write failed")
    assert failed_writes > 0, "the outage never reached the ledger's writes"
    conn = await asyncpg.connect(pg.dsn, server_settings={"search_path": SCHEMA})
    try:
        ids = [r[0] for r in await conn.fetch("SELECT event_id FROM events")]
        assert len(ids) == len(events)
        assert set(ids) == {e.event_id for e in events}
        report = await verify(conn)
        assert report.ok, [str(b) for b in report.breaks]
        assert report.tasks == TASKS and report.events == len(events)
        rollup = await conn.fetch(
            "SELECT hour, system, agent, model, calls, unpriced_calls, input_tokens,"
            " output_tokens, cached_tokens, cost_usd FROM spend_hourly ORDER BY 1, 2, 3, 4"
        )
        recomputed = await conn.fetch(
            """
            SELECT date_trunc('hour', at), system, agent, data->>'model', count(*),
                   count(*) FILTER (WHERE data->'cost_usd' = 'null'),
                   sum((data->>'input_tokens')::bigint), sum((data->>'output_tokens')::bigint),
                   sum((data->>'cached_tokens')::bigint),
                   coalesce(sum((data->>'cost_usd')::numeric), 0)
            FROM events WHERE type = 'model.called' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
            """
        )
        assert [tuple(r) for r in rollup] == [tuple(r) for r in recomputed]
        task_rows = await conn.fetch("SELECT events, model_calls, cost_usd, status FROM tasks")
        per_task = len(events) // TASKS
        calls = sum(1 for e in events if e.type == "model.called") // TASKS
        assert len(task_rows) == TASKS
        assert all(r["events"] == per_task and r["model_calls"] == calls for r in task_rows)
        assert all(r["status"] == "succeeded" for r in task_rows)
        expected_cost = sum(
            (
                Decimal(repr(e.data["cost_usd"]))
                for e in events
                if e.type == "model.called" and e.data["cost_usd"] is not None
            ),
            Decimal(0),
        )
        assert sum((r["cost_usd"] for r in task_rows), Decimal(0)) == expected_cost
    finally:
        await conn.close()
    print(
        f"\nledger PostgreSQL outage: {len(events)} events over {PRODUCE_S:.0f} s, "
        f"{before_outage} stored before the outage, PostgreSQL down {downtime:.1f} s, "
        f"caught up {caught_up:.1f} s after it came back ({failed_writes} failed writes "
        "retried); stored once each, "
        f"{report.tasks} chains verified, {len(rollup)} spend rollup rows match"
    )
