"""Policy decision round trip vs a raw aiokafka request-reply, on the same broker, same process.

Runs, on the running stack (`podium stack up`), under a throwaway topic prefix and PostgreSQL
schema (both removed at the end):

- raw: a requester (aiokafka producer + a manually assigned reply consumer) and a replier
  (consumer group, answers every request with its own bytes, no work); the same client settings
  as the policy path (idempotent producer, acks=all, linger 0, fetch_max_wait_ms 5);
- policy: `Authorizer.authorize(...)` of a model call against a real `PolicyService` whose rules
  put a token budget on the task, so each decision includes its budget reservation in PostgreSQL,
  the Ed25519 signature (over the decision and the request digest) and its check by the
  requester, the reply and the `policy.decided` event.

Each at concurrency 1 and 64. Prints p50/p99 and decisions/s of both, the ratios at concurrency
64 (`c=64 ratios: p50=<x> p99=<y>`), and last:
`policy p50_ratio=<x> p99_ratio=<y> rps=<n>` (ratios at concurrency 1, rps at concurrency 64).

    .venv/bin/python bench/policy_latency.py [--requests 400] [--concurrent-requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import TopicPartition

from manifests.loader import build, parse_text
from podium import composition, environment
from podium.core.settings import KafkaSettings
from policy_service.client import Authorizer, is_allowed
from policy_service.keys import generate, parse_verify_keys
from policy_service.rules import rules_from_resources
from policy_service.rules_source import StaticRules
from policy_service.settings import PolicySettings
from topics.codec import HEADER_CORRELATION_ID, HEADER_REPLY_TO, header
from topics.kafka import ensure_topics, make_admin, make_consumer, make_producer
from topics.messages import Action
from topics.names import TopicNames

MANIFESTS = """
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {name: local}
spec: {provider: mock, default_model: mock-small}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: bencher}
spec: {prompt: p, model: {endpoint: local, model: mock-small}}
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {name: bench}
spec: {agents: [bencher]}
---
apiVersion: orloj.dev/v1
kind: AgentPolicy
metadata: {name: bench-budget}
spec: {scope: {system: bench}, max_tokens_per_task: 100000000}
"""

SIGNING_KEY, VERIFY_KEYS = generate("bench")
FETCH_WAIT_MS = 5


class RawRequester:
    """The baseline: plain aiokafka request-reply with correlation ids and nothing else."""

    def __init__(self, kafka: KafkaSettings, request_topic: str, reply_topic: str) -> None:
        self.kafka = kafka
        self.request_topic = request_topic
        self.reply_topic = reply_topic
        self.producer = make_producer(kafka)
        self.consumer = make_consumer(
            kafka,
            group_id=None,
            isolation_level="read_uncommitted",
            fetch_max_wait_ms=FETCH_WAIT_MS,
        )
        self.pending: dict[bytes, asyncio.Future[bytes]] = {}
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        tp = TopicPartition(self.reply_topic, 0)
        self.consumer.assign([tp])
        await self.consumer.seek_to_end(tp)
        await self.consumer.position(tp)
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    future = self.pending.pop(record.value, None)
                    if future is not None and not future.done():
                        future.set_result(record.value)

    async def request(self) -> None:
        cid = uuid.uuid4().hex.encode()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.pending[cid] = future
        await self.producer.send(
            self.request_topic,
            key=cid,
            value=cid,
            headers=[(HEADER_REPLY_TO, self.reply_topic.encode()), (HEADER_CORRELATION_ID, cid)],
        )
        await asyncio.wait_for(future, 10)

    async def stop(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        await self.consumer.stop()
        await self.producer.stop()


async def raw_replier(kafka: KafkaSettings, topic: str, group: str, stop: asyncio.Event) -> None:
    consumer = make_consumer(
        kafka,
        topic,
        group_id=group,
        isolation_level="read_uncommitted",
        fetch_max_wait_ms=FETCH_WAIT_MS,
    )
    producer = make_producer(kafka)
    await consumer.start()
    await producer.start()
    # Like the policy service, the replier commits after the replies are acknowledged but does
    # not hold the next fetch for it: waiting on every commit would slow the baseline and flatter
    # the ratio.
    committing: set[asyncio.Task[None]] = set()

    async def commit_after(
        futures: list[asyncio.Future[object]], offsets: dict[TopicPartition, int]
    ) -> None:
        await asyncio.gather(*futures)
        await consumer.commit(offsets)

    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=500)
            if not batches:
                continue
            futures = []
            for records in batches.values():
                for r in records:
                    reply_to = header(r.headers, HEADER_REPLY_TO) or ""
                    futures.append(
                        await producer.send(
                            reply_to, key=r.key, value=r.value, headers=list(r.headers)
                        )
                    )
            offsets = {tp: rs[-1].offset + 1 for tp, rs in batches.items()}
            task = asyncio.create_task(commit_after(futures, offsets))
            committing.add(task)
            task.add_done_callback(committing.discard)
    finally:
        await asyncio.gather(*committing, return_exceptions=True)
        await consumer.stop()
        await producer.stop()


async def measure(
    call: Callable[[], Awaitable[None]], total: int, concurrency: int
) -> tuple[list[float], float]:
    latencies: list[float] = []
    queue = iter(range(total))

    async def worker() -> None:
        for _ in queue:
            start = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - start) * 1000)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, total / (time.perf_counter() - began)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(label: str, latencies: list[float], rps: float) -> None:
    print(
        f"{label:<12} n={len(latencies):<5} p50={statistics.median(latencies):7.2f} ms "
        f"p99={pct(latencies, 0.99):7.2f} ms rps={rps:8.0f}",
        flush=True,
    )


async def main(requests: int, concurrent_requests: int) -> None:
    base = environment.admin_kafka_settings()
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    kafka = base.model_copy(update={"topic_prefix": prefix})
    names = TopicNames(prefix)
    database = environment.database_settings()
    dsn = database.url
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    raw_requests, raw_replies = f"{prefix}.raw.requests", f"{prefix}.raw.replies"
    await ensure_topics(kafka, [*names.core_topics(), raw_requests])
    await ensure_topics(kafka, [raw_replies], partitions=1)

    located, errors = parse_text("bench.yaml", MANIFESTS)
    catalog = build(located, errors).catalog
    assert catalog is not None
    service = composition.policy_service(
        kafka,
        PolicySettings(signing_key=SIGNING_KEY, fetch_max_wait_ms=FETCH_WAIT_MS),
        database,
        rules=StaticRules(rules_from_resources(catalog.resources())),
        db_schema=schema,
    )
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(service.run(stop)),
        asyncio.create_task(raw_replier(kafka, raw_requests, f"{prefix}.raw", stop)),
    ]
    authorizer = Authorizer(
        kafka, names, instance_id=f"{prefix}-bench", verify_keys=parse_verify_keys(VERIFY_KEYS)
    )
    raw = RawRequester(kafka, raw_requests, raw_replies)
    try:
        await asyncio.wait_for(service.ready.wait(), 60)
        for task in tasks:
            if task.done():
                task.result()
        await authorizer.start()
        await raw.start()

        async def policy_call() -> None:
            decision = await authorizer.authorize(
                task_id=f"task-{uuid.uuid4().hex[:12]}",
                system="bench",
                agent="bencher",
                step_id="s",
                action=Action.MODEL_CALL,
                model="mock-small",
                endpoint="local",
                estimated_tokens=100,
            )
            if not is_allowed(decision):
                raise RuntimeError(f"unexpected decision: {decision}")

        # Warm up both paths (group joins, metadata, connection pools).
        await measure(raw.request, 100, 8)
        await measure(policy_call, 100, 8)
        # Everything allocated so far (imports, clients, manifests) lives as long as the process:
        # freeze it (what a long-running service process can do once started), so that a full
        # collection does not scan it. Otherwise one gen-2 collection pauses this process (both
        # paths and the benchmark client) for 100+ ms and decides the p99 of whichever path
        # happens to be measured then.
        gc.collect()
        gc.freeze()

        raw1, raw1_rps = await measure(raw.request, requests, 1)
        pol1, pol1_rps = await measure(policy_call, requests, 1)
        raw64, raw64_rps = await measure(raw.request, concurrent_requests, 64)
        pol64, pol64_rps = await measure(policy_call, concurrent_requests, 64)
        report("raw c=1", raw1, raw1_rps)
        report("policy c=1", pol1, pol1_rps)
        report("raw c=64", raw64, raw64_rps)
        report("policy c=64", pol64, pol64_rps)
        print(
            f"c=64 ratios: p50={statistics.median(pol64) / statistics.median(raw64):.2f} "
            f"p99={pct(pol64, 0.99) / pct(raw64, 0.99):.2f}"
        )
        p50_ratio = statistics.median(pol1) / statistics.median(raw1)
        p99_ratio = pct(pol1, 0.99) / pct(raw1, 0.99)
        print(f"policy p50_ratio={p50_ratio:.2f} p99_ratio={p99_ratio:.2f} rps={pol64_rps:.0f}")
    finally:
        await authorizer.stop()
        await raw.stop()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await _cleanup(kafka, prefix, dsn, schema)


async def _cleanup(kafka: KafkaSettings, prefix: str, dsn: str, schema: str) -> None:
    admin = make_admin(kafka)
    try:
        await admin.start()
        mine = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="at concurrency 1")
    parser.add_argument("--concurrent-requests", type=int, default=2000, help="at concurrency 64")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrent_requests))
