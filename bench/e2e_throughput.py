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
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from manifests.apply import apply_paths
from podium import environment
from podium.core.settings import KafkaSettings
from policy_service.keys import generate
from topics.codec import encode, headers_for
from topics.kafka import ensure_topics, make_admin, make_consumer, make_producer
from topics.messages import TaskRequested, utcnow
from topics.names import TopicNames

ROOT = Path(__file__).resolve().parent.parent
PODIUM = ROOT / ".venv" / "bin" / "podium"
AGENTS = ["first", "second", "third"]
PARTITIONS = 3
MANIFESTS = (
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
"""
    + "".join(
        f"""---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {{name: {a}}}
spec: {{model: {{endpoint: bench-mock, model: mock-1}}, tools: [none]}}
"""
        for a in AGENTS
    )
    + """---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {name: bench-pipeline}
spec:
  agents: [first, second, third]
  graph:
    first: {next: second}
    second: {next: third}
"""
)

SIGNING_KEY, VERIFY_KEYS = generate("bench-e2e")
"""The decision keys of the benchmark's own processes (they run with no stack state)."""


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


# --- the observer --------------------------------------------------------------------------


class Observer:
    """Arrival time of each task's message on each topic (read_committed, every partition)."""

    def __init__(
        self, kafka: KafkaSettings, topics: list[str], partitions: int = PARTITIONS
    ) -> None:
        self.kafka = kafka
        self.topics = topics
        self.partitions = partitions
        self.seen: dict[str, dict[str, float]] = defaultdict(dict)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = make_consumer(self.kafka, group_id=None, fetch_max_wait_ms=5)
        await consumer.start()
        tps = [TopicPartition(t, p) for t in self.topics for p in range(self.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        self._task = asyncio.create_task(self._run(consumer))

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while not self._stop.is_set():
                batches = await consumer.getmany(timeout_ms=50)
                now = time.perf_counter()
                for tp, records in batches.items():
                    for record in records:
                        key = record.key.decode()
                        self.seen[key].setdefault(tp.topic, now)
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    def done(self, key: str) -> bool:
        return self.topics[-1] in self.seen.get(key, {})

    def hops(self, keys: list[str]) -> list[float]:
        """Milliseconds between consecutive topics, for every key and hop."""
        out = []
        for key in keys:
            times = self.seen[key]
            for a, b in zip(self.topics, self.topics[1:], strict=False):
                out.append((times[b] - times[a]) * 1000)
        return out


async def wait_done(observer: Observer, keys: list[str], timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not all(observer.done(k) for k in keys):
        if time.monotonic() > deadline:
            missing = [k for k in keys if not observer.done(k)]
            raise RuntimeError(f"{len(missing)} of {len(keys)} tasks did not finish: {missing[:5]}")
        await asyncio.sleep(0.005)


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


def start_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


async def run_raw(
    kafka: KafkaSettings, env: dict[str, str], home: Path, args: argparse.Namespace
) -> tuple[tuple[list[float], float], str]:
    prefix = f"braw{uuid.uuid4().hex[:6]}"
    topics = raw_topics(prefix)
    await ensure_topics(kafka, topics, partitions=PARTITIONS)
    proc = start_process([sys.executable, __file__, "--raw-chain", prefix], env, home / "raw.log")
    observer = Observer(kafka, topics)
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
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()


async def run_podium(
    kafka: KafkaSettings, env: dict[str, str], home: Path, args: argparse.Namespace
) -> tuple[tuple[list[float], float], str]:
    prefix = f"bpod{uuid.uuid4().hex[:6]}"
    pkafka = kafka.model_copy(update={"topic_prefix": prefix, "partitions": PARTITIONS})
    names = TopicNames(prefix)
    await ensure_topics(pkafka, [*names.core_topics(), *(names.agent(a) for a in AGENTS)])
    manifest = home / "pipeline.yaml"
    manifest.write_text(MANIFESTS)
    report = await apply_paths(pkafka, names, [manifest])
    if report.errors:
        raise RuntimeError(f"manifests: {report.errors}")
    penv = {
        **env,
        "PODIUM_KAFKA_TOPIC_PREFIX": prefix,
        "PODIUM_KAFKA_PARTITIONS": str(PARTITIONS),
    }
    procs = [
        start_process([str(PODIUM), "policy"], penv, home / "policy.log"),
        start_process([str(PODIUM), "dispatcher"], penv, home / "dispatcher.log"),
        *(start_process([str(PODIUM), "actor", a], penv, home / f"actor-{a}.log") for a in AGENTS),
    ]
    observer = Observer(pkafka, [*(names.agent(a) for a in AGENTS), names.results])
    await observer.start()
    producer = make_producer(pkafka)
    await producer.start()

    async def send(key: str) -> None:
        task = TaskRequested(
            task_id=key, system="bench-pipeline", input="go", submitted_at=utcnow(), timeout_s=300
        )
        await producer.send_and_wait(
            names.tasks, encode(task), key=key.encode(), headers=headers_for(task)
        )

    try:
        return await measure(observer, send, prefix, args.sequential, args.burst), prefix
    finally:
        await producer.stop()
        await observer.stop()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def cleanup(kafka: KafkaSettings, prefixes: list[str]) -> None:
    admin = make_admin(kafka)
    try:
        await admin.start()
        mine = [t for t in await admin.list_topics() if t.split(".")[0] in prefixes]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


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
