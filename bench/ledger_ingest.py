"""Ledger ingest throughput against raw asyncpg COPY, and spend query p95 over 1,000,000 events.

Runs against the local stack (or PODIUM_KAFKA_BOOTSTRAP / PODIUM_DATABASE_URL), in a unique topic
prefix and unique schemas that it removes afterwards. Last line:
`ledger ingest_ratio=<x> events_per_s=<n>` (ratio = ledger events/s over raw COPY rows/s).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from ledger.migrate import migrate
from ledger.plan import incoming, plan_batch
from ledger.service import LedgerService
from ledger.settings import LedgerSettings
from ledger.spend import GroupBy, spend
from ledger.store import STORED_COLUMNS, create_pool
from podium import environment
from podium.core.settings import DatabaseSettings, KafkaSettings
from topics.codec import encode
from topics.kafka import ensure_topics, make_admin, make_producer
from topics.messages import Event, ModelCalledData, StepStartedData, ToolCalledData, event
from topics.names import TopicNames

AGENTS = ["planner", "researcher", "writer", "critic"]
MODELS = ["gpt-4o-mini", "claude-3-5-haiku", "llama-3-70b"]
SYSTEMS = ["research", "support", "billing"]


def make_events(n: int, *, tasks: int, start: datetime) -> list[Event]:
    rng = random.Random(1)
    out: list[Event] = []
    for i in range(n):
        task = f"bench-{i % tasks}"
        system = SYSTEMS[i % tasks % len(SYSTEMS)]
        agent = rng.choice(AGENTS)
        env: dict[str, Any] = {
            "system": system,
            "agent": agent,
            "step_id": f"{task}/{agent}",
            "at": start + timedelta(milliseconds=i),
        }
        kind = i % 3
        if kind == 0:
            payload: Any = StepStartedData()
        elif kind == 1:
            cost = None if rng.random() < 0.05 else round(rng.uniform(1e-5, 1e-2), 8)
            payload = ModelCalledData(
                request_id=f"r{i}",
                provider="openai",
                endpoint="ep",
                model=rng.choice(MODELS),
                input_tokens=rng.randint(50, 4000),
                output_tokens=rng.randint(10, 800),
                cost_usd=cost,
                price_source="genai-prices" if cost is not None else "unknown",
            )
        else:
            payload = ToolCalledData(request_id=f"r{i}", tool="web-search", arguments={"q": "x"})
        out.append(event(payload, event_id=f"ev-{i}", task_id=task, **env))
    return out


async def produce(kafka: KafkaSettings, topic: str, events: list[Event]) -> None:
    producer = make_producer(kafka, linger_ms=20, max_batch_size=512 * 1024)
    try:
        await producer.start()
        futures = [await producer.send(topic, encode(e), key=e.task_id.encode()) for e in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def copy_records(events: list[Event]) -> list[tuple[Any, ...]]:
    items = [incoming(e) for e in events]
    plan = plan_batch(items, set(), {})
    return [
        (
            ln.item.event.event_id,
            ln.item.event.task_id,
            ln.seq,
            ln.item.event.type,
            ln.item.event.system,
            ln.item.event.agent,
            ln.item.event.step_id,
            ln.item.event.attempt,
            ln.item.event.at,
            "",
            "",
            encode_json(ln.item.event.data),
            ln.item.body.decode(),
            ln.prev_hash,
            ln.hash,
            "",
            -1,
            -1,
            n,
        )
        for n, ln in enumerate(plan.links, 1)
    ]


def encode_json(value: Any) -> str:
    import msgspec

    return msgspec.json.encode(value).decode()


async def fresh_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, schema)
    finally:
        await conn.close()


async def drop_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def ingest(
    args: argparse.Namespace, kafka_base: KafkaSettings, dsn: str
) -> tuple[float, float]:
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    kafka = kafka_base.model_copy(update={"topic_prefix": prefix, "partitions": 6})
    names = TopicNames(prefix)
    ledger_schema, raw_schema = f"{prefix}_ledger", f"{prefix}_raw"
    events = make_events(args.events, tasks=args.tasks, start=datetime.now(UTC))
    try:
        await ensure_topics(kafka, [names.events, names.results])
        t0 = time.perf_counter()
        await produce(kafka, names.events, events)
        print(f"produced {len(events)} events in {time.perf_counter() - t0:.1f} s")
        await fresh_schema(dsn, ledger_schema)
        pool = await create_pool(dsn, ledger_schema, size=2)
        settings = LedgerSettings(schema_name=ledger_schema, batch_size=args.batch)
        service = LedgerService(settings, DatabaseSettings(url=dsn), kafka, api=False)
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(service.run(stop))
        first_at: float | None = None
        first_count = 0
        while (stored := await pool.fetchval("SELECT count(*) FROM events")) < len(events):
            if stored and first_at is None:
                first_at, first_count = time.perf_counter(), stored
            await asyncio.sleep(0.05)
        done = time.perf_counter()
        total_s = done - started
        print(f"ledger start to last event (group join, migrations included): {total_s:.2f} s")
        # Steady state: from the first stored batch to the last event.
        if first_at is None:
            first_at, first_count = started, 0
        ledger_s = done - first_at
        stored_steady = len(events) - first_count
        stop.set()
        await task
        await pool.close()
        if service.ingester is not None:
            ingester = service.ingester
            print(
                f"ledger stored {ingester.stored} events, {ingester.duplicates} duplicates, "
                f"{ingester.replanned} batches planned again in the transaction"
            )
        ledger_rate = stored_steady / ledger_s
        print(f"ledger: {stored_steady} events in {ledger_s:.2f} s = {ledger_rate:,.0f} events/s")

        records = copy_records(events)
        await fresh_schema(dsn, raw_schema)
        conn = await asyncpg.connect(dsn)
        try:
            started = time.perf_counter()
            for i in range(0, len(records), args.batch):
                await conn.copy_records_to_table(
                    "events",
                    records=records[i : i + args.batch],
                    columns=STORED_COLUMNS,
                    schema_name=raw_schema,
                )
            raw_s = time.perf_counter() - started
        finally:
            await conn.close()
        raw_rate = len(records) / raw_s
        print(f"raw COPY: {len(records)} rows in {raw_s:.2f} s = {raw_rate:,.0f} rows/s")
        return ledger_rate / raw_rate, ledger_rate
    finally:
        await drop_schema(dsn, ledger_schema)
        await drop_schema(dsn, raw_schema)
        admin = make_admin(kafka)
        try:
            await admin.start()
            await admin.delete_topics(
                [t for t in await admin.list_topics() if t.startswith(prefix)]
            )
        finally:
            await admin.close()


async def spend_p95(args: argparse.Namespace, dsn: str) -> float:
    schema = f"bench{uuid.uuid4().hex[:6]}_spend"
    await fresh_schema(dsn, schema)
    try:
        start = datetime.now(UTC) - timedelta(days=30)
        conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        try:
            t0 = time.perf_counter()
            chunk = 100_000
            for first in range(0, args.stored, chunk):
                rng = random.Random(first)
                rows = []
                for i in range(first, min(first + chunk, args.stored)):
                    model = MODELS[i % 3]
                    cost = None if i % 20 == 0 else round(rng.uniform(1e-5, 1e-2), 8)
                    data = (
                        f'{{"model":"{model}","input_tokens":{rng.randint(50, 4000)},'
                        f'"output_tokens":{rng.randint(10, 800)},"cached_tokens":0,'
                        f'"cost_usd":{"null" if cost is None else cost}}}'
                    )
                    rows.append(
                        (
                            f"e{i}",
                            f"t{i // 50}",
                            i % 50 + 1,
                            "model.called",
                            SYSTEMS[i % 3],
                            AGENTS[(i // 3) % 4],
                            "",
                            0,
                            start + timedelta(seconds=i * 2.5),
                            "",
                            "",
                            data,
                            data,
                            "",
                            "",
                            "",
                            -1,
                            -1,
                            i + 1,
                        )
                    )
                await conn.copy_records_to_table(
                    "events", records=rows, columns=STORED_COLUMNS, schema_name=schema
                )
            await conn.execute(
                """
                INSERT INTO spend_hourly
                SELECT date_trunc('hour', at), system, agent, data->>'model', count(*),
                       count(*) FILTER (WHERE data->'cost_usd' = 'null'),
                       sum((data->>'input_tokens')::bigint), sum((data->>'output_tokens')::bigint),
                       0, coalesce(sum((data->>'cost_usd')::numeric), 0)
                FROM events WHERE type = 'model.called' GROUP BY 1, 2, 3, 4
                """
            )
            await conn.execute("ANALYZE")
            print(f"stored {args.stored:,} model.called events in {time.perf_counter() - t0:.1f} s")
            timings = []
            groups: list[GroupBy] = ["system", "agent", "model", "day"]
            for i in range(args.queries):
                since = start + timedelta(days=i % 7)
                t = time.perf_counter()
                await spend(
                    conn,
                    group_by=groups[i % 4],
                    since=since,
                    until=None,
                    system=SYSTEMS[i % 3] if i % 2 else None,
                )
                timings.append((time.perf_counter() - t) * 1000)
            p95 = statistics.quantiles(timings, n=100)[94]
            print(
                f"spend query over {args.stored:,} events: p50 {statistics.median(timings):.2f} ms,"
                f" p95 {p95:.2f} ms ({args.queries} queries)"
            )
            return p95
        finally:
            await conn.close()
    finally:
        await drop_schema(dsn, schema)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--tasks", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--stored", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=400)
    args = parser.parse_args()
    kafka = environment.admin_kafka_settings()
    dsn = environment.database_settings().url
    p95 = await spend_p95(args, dsn)
    ratio, rate = await ingest(args, kafka, dsn)
    print(f"spend_p95_ms={p95:.2f}")
    print(f"ledger ingest_ratio={ratio:.2f} events_per_s={rate:.0f}")


if __name__ == "__main__":
    asyncio.run(main())
