"""End-to-end throughput and per-hop latency of a 3-agent pipeline vs a raw transactional chain.

Runs on the running stack (`podium stack up`), under throwaway topic prefixes (removed at the
end), with the same broker and the same number of partitions for both:

- podium: the pipeline `first -> second -> third` (mock model, no tools) applied to Kafka;
  `podium policy`, `podium dispatcher` and one `podium actor` per agent run as separate
  processes. Every hop is a real step: consume, policy decision (request-reply), model call,
  produce the next step and the events in one transaction, commit.
- raw: three consume-transform-produce loops (aiokafka, one transaction per record: consume,
  produce to the next topic, `send_offsets_to_transaction`, commit), in one separate process,
  `r0 -> r1 -> r2 -> r3`.

An observer (read_committed, assigned to every partition) stamps the arrival of each message
on every inbox (and on `results`/`r3`); a hop is the time between a task's arrival on one inbox
and on the next. Latency: tasks one at a time; throughput: a burst of tasks, all at once.
Prints p50/p99 per hop of both and tasks/s of both, and last:
`e2e hop_p50_ratio=<x> hop_p99_ratio=<y> tasks_per_s=<n>` (podium over raw for the ratios).

    .venv/bin/python bench/e2e_throughput.py [--sequential 60] [--burst 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from pipeline import (  # beside this file
    AGENTS,
    ROOT,
    SIGNING_KEY,
    VERIFY_KEYS,
    Observer,
    cleanup,
    deploy,
    pipeline_manifests,
    start_process,
    start_services,
    stop_processes,
    task_sender,
    wait_done,
)

from podium import environment
from podium.core.settings import KafkaSettings
from topics.kafka import ensure_topics, make_consumer, make_producer
from topics.names import TopicNames

PARTITIONS = 3
MANIFESTS = pipeline_manifests(
    """
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {name: bench-mock}
spec:
  provider: mock
  default_model: mock-1
  options:
    script:
      first: [{content: "first done"}]
      second: [{content: "second done"}]
      third: [{content: "third done"}]
""",
    endpoint="bench-mock",
    model="mock-1",
)


# --- the raw chain (run in its own process: `--raw-chain PREFIX`) -----------------------------


def raw_topics(prefix: str) -> list[str]:
    return [f"{prefix}.r{i}" for i in range(4)]


async def raw_hop(kafka: KafkaSettings, source: str, target: str, group: str) -> None:
    """consume -> transform -> produce + offsets, one transaction per record."""
    consumer = make_consumer(kafka, source, group_id=group, fetch_max_wait_ms=5)
    producer = make_producer(kafka, transactional_id=f"{group}-{uuid.uuid4().hex[:6]}")
    await producer.start()
    try:
        await consumer.start()
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            for tp, records in batches.items():
                for record in records:
                    async with producer.transaction():
                        value = record.value + b"."  # the transformation
                        await producer.send(target, value, key=record.key)
                        await producer.send_offsets_to_transaction({tp: record.offset + 1}, group)
    finally:
        await consumer.stop()
        await producer.stop()


async def raw_chain(prefix: str) -> None:
    kafka = environment.admin_kafka_settings()
    topics = raw_topics(prefix)
    await asyncio.gather(
        *(raw_hop(kafka, topics[i], topics[i + 1], f"{prefix}.raw{i}") for i in range(3))
    )


def p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


# --- the two runs --------------------------------------------------------------------------


async def measure(
    observer: Observer,
    send: Callable[[str], Awaitable[None]],
    prefix: str,
    sequential: int,
    burst: int,
) -> tuple[list[float], float]:
    """Hop latencies of `sequential` tasks one at a time, then tasks/s of a burst."""
    warm = [f"{prefix}-warm-{i}" for i in range(5)]
    for key in warm:
        await send(key)
    await wait_done(observer, warm, timeout=120)
    keys = [f"{prefix}-seq-{i}" for i in range(sequential)]
    for key in keys:
        await send(key)
        await wait_done(observer, [key], timeout=60)
    hops = observer.hops(keys)
    burst_keys = [f"{prefix}-burst-{i}" for i in range(burst)]
    started = time.perf_counter()
    for key in burst_keys:
        await send(key)
    await wait_done(observer, burst_keys, timeout=300)
    rate = burst / (time.perf_counter() - started)
    return hops, rate


async def run_raw(
    kafka: KafkaSettings, env: dict[str, str], home: Path, args: argparse.Namespace
) -> tuple[tuple[list[float], float], str]:
    prefix = f"braw{uuid.uuid4().hex[:6]}"
    topics = raw_topics(prefix)
    await ensure_topics(kafka, topics, partitions=PARTITIONS)
    proc = start_process([sys.executable, __file__, "--raw-chain", prefix], env, home / "raw.log")
    observer = Observer(kafka, topics, PARTITIONS)
    await observer.start()
    producer = make_producer(kafka)
    await producer.start()

    async def send(key: str) -> None:
        await producer.send_and_wait(topics[0], b"x" * 200, key=key.encode())

    try:
        return await measure(observer, send, prefix, args.sequential, args.burst), prefix
    finally:
        await producer.stop()
        await observer.stop()
        stop_processes([proc], timeout_s=10)


async def run_podium(
    kafka: KafkaSettings, env: dict[str, str], home: Path, args: argparse.Namespace
) -> tuple[tuple[list[float], float], str]:
    prefix = f"bpod{uuid.uuid4().hex[:6]}"
    pkafka = kafka.model_copy(update={"topic_prefix": prefix, "partitions": PARTITIONS})
    names = TopicNames(prefix)
    await deploy(pkafka, names, home, MANIFESTS)
    penv = {
        **env,
        "PODIUM_KAFKA_TOPIC_PREFIX": prefix,
        "PODIUM_KAFKA_PARTITIONS": str(PARTITIONS),
    }
    procs = start_services(penv, home)
    observer = Observer(pkafka, [*(names.agent(a) for a in AGENTS), names.results], PARTITIONS)
    await observer.start()
    producer = make_producer(pkafka)
    await producer.start()
    send = task_sender(producer, names, timeout_s=300)

    try:
        return await measure(observer, send, prefix, args.sequential, args.burst), prefix
    finally:
        await producer.stop()
        await observer.stop()
        stop_processes(procs)


async def main(args: argparse.Namespace) -> None:
    kafka = environment.admin_kafka_settings()
    database = environment.database_settings()
    home = Path(tempfile.mkdtemp(prefix="podium-bench-e2e-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")},
        **kafka.as_env(),  # the stack's admin: the benchmark's topics have prefixes of their own
        "PODIUM_DATABASE_URL": database.url,
        "PODIUM_POLICY_SIGNING_KEY": SIGNING_KEY,
        "PODIUM_POLICY_VERIFY_KEYS": VERIFY_KEYS,
        "PYTHONPATH": str(ROOT),
    }
    prefixes: list[str] = []
    try:
        (raw_hops, raw_rate), raw_prefix = await run_raw(kafka, env, home, args)
        prefixes.append(raw_prefix)
        (pod_hops, pod_rate), pod_prefix = await run_podium(kafka, env, home, args)
        prefixes.append(pod_prefix)
    finally:
        await cleanup(kafka, prefixes)
    rp50, rp99 = p(raw_hops, 50), p(raw_hops, 99)
    pp50, pp99 = p(pod_hops, 50), p(pod_hops, 99)
    print(f"raw    hop: p50 {rp50:.2f} ms, p99 {rp99:.2f} ms; {raw_rate:.1f} tasks/s (3 hops)")
    print(f"podium hop: p50 {pp50:.2f} ms, p99 {pp99:.2f} ms; {pod_rate:.1f} tasks/s (3 agents)")
    print(f"({args.sequential} sequential tasks for latency, a burst of {args.burst} for rate)")
    ratios = f"hop_p50_ratio={pp50 / rp50:.2f} hop_p99_ratio={pp99 / rp99:.2f}"
    print(f"e2e {ratios} tasks_per_s={pod_rate:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=60, help="tasks one at a time")
    parser.add_argument("--burst", type=int, default=200, help="tasks at once, for tasks/s")
    parser.add_argument("--raw-chain", default="", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.raw_chain:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(raw_chain(parsed.raw_chain))
    else:
        asyncio.run(main(parsed))
