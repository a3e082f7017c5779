"""The 3-agent pipeline the end-to-end benchmarks run: its manifests, its services as separate
processes, the tasks sent to it and an observer of when each task reaches each topic.

`e2e_throughput.py` (mock model) and `slow_model_burst.py` (a slow OpenAI-compatible fake) both
deploy it under a throwaway topic prefix and remove that prefix's topics at the end.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from manifests.apply import apply_paths
from podium.core.settings import KafkaSettings
from policy_service.keys import generate
from topics.codec import encode, headers_for
from topics.kafka import ensure_topics, make_admin, make_consumer
from topics.messages import TaskRequested, utcnow
from topics.names import TopicNames

ROOT = Path(__file__).resolve().parent.parent
PODIUM = ROOT / ".venv" / "bin" / "podium"
AGENTS = ["first", "second", "third"]
SYSTEM = "bench-pipeline"

SIGNING_KEY, VERIFY_KEYS = generate("bench-e2e")
"""The decision keys of the benchmark's own processes (they run with no stack state)."""


def pipeline_manifests(endpoint_yaml: str, endpoint: str, model: str) -> str:
    """The endpoint's document, one Agent per stage on it, and the system
    `first -> second -> third`."""
    agents = "".join(
        f"""---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {{name: {a}}}
spec: {{model: {{endpoint: {endpoint}, model: {model}}}, tools: [none]}}
"""
        for a in AGENTS
    )
    return (
        endpoint_yaml
        + agents
        + f"""---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {{name: {SYSTEM}}}
spec:
  agents: [first, second, third]
  graph:
    first: {{next: second}}
    second: {{next: third}}
"""
    )


async def deploy(kafka: KafkaSettings, names: TopicNames, home: Path, manifests: str) -> None:
    """Create the pipeline's topics and apply its manifests under `names`' prefix."""
    await ensure_topics(kafka, [*names.core_topics(), *(names.agent(a) for a in AGENTS)])
    manifest = home / "pipeline.yaml"
    manifest.write_text(manifests)
    report = await apply_paths(kafka, names, [manifest])
    if report.errors:
        raise RuntimeError(f"manifests: {report.errors}")


def start_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


def start_services(env: dict[str, str], home: Path) -> list[subprocess.Popen[bytes]]:
    """`podium policy`, `podium dispatcher` and one `podium actor` per agent (policy first)."""
    return [
        start_process([str(PODIUM), "policy"], env, home / "policy.log"),
        start_process([str(PODIUM), "dispatcher"], env, home / "dispatcher.log"),
        *(start_process([str(PODIUM), "actor", a], env, home / f"actor-{a}.log") for a in AGENTS),
    ]


def stop_processes(procs: list[subprocess.Popen[bytes]], *, timeout_s: float = 30) -> None:
    """SIGTERM every process, then wait for each (SIGKILL the ones that outlast `timeout_s`)."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def task_sender(
    producer: AIOKafkaProducer, names: TopicNames, *, timeout_s: float | None = None
) -> Callable[[str], Awaitable[None]]:
    """Sends the pipeline a task whose id (and key) is the given string."""

    async def send(key: str) -> None:
        task = TaskRequested(
            task_id=key, system=SYSTEM, input="go", submitted_at=utcnow(), timeout_s=timeout_s
        )
        await producer.send_and_wait(
            names.tasks, encode(task), key=key.encode(), headers=headers_for(task)
        )

    return send


async def cleanup(kafka: KafkaSettings, prefixes: list[str]) -> None:
    """Delete every topic under the given prefixes."""
    admin = make_admin(kafka)
    try:
        await admin.start()
        mine = [t for t in await admin.list_topics() if t.split(".")[0] in prefixes]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


class Observer:
    """Arrival time of each task's message on each topic (read_committed, every partition)."""

    def __init__(self, kafka: KafkaSettings, topics: list[str], partitions: int) -> None:
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
