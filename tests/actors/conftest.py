"""A real runtime for the actor tests: manifests applied to Kafka, the policy service, the
dispatcher and actors built by the composition root (`podium.composition`, as the command line
builds them) and running as asyncio tasks in the test process, and a collector that reads
`events` and `results` (read_committed) into memory, by task."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from actors.settings import ActorSettings, DispatcherSettings
from manifests.apply import apply_paths
from manifests.watcher import CatalogWatcher
from podium import composition
from podium.core.settings import DatabaseSettings, KafkaSettings
from policy_service.client import Authorizer
from policy_service.keys import parse_verify_keys
from policy_service.settings import PolicySettings
from tests.conftest import OFFLINE_ENDPOINT
from tests.helpers import APPROVER_PUBLIC, key_pair, wait_until
from topics.codec import MalformedMessage, decode, encode, headers_for
from topics.kafka import ensure_topics, make_consumer, make_producer
from topics.messages import AnyResult, Event, TaskRequested, utcnow
from topics.names import TopicNames

SIGNING_KEY, VERIFY_KEYS = key_pair("test-actors")
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "manifests" / "examples" / "research-pipeline"
RESEARCH_FILES = [
    EXAMPLE / "agents.yaml",
    EXAMPLE / "system.yaml",
    EXAMPLE / "governance.yaml",
    OFFLINE_ENDPOINT,
]

FAST_ACTOR = ActorSettings(
    policy_timeout_s=10.0,
    step_retry_attempts=2,
    step_retry_backoff_s=0.05,
    grace_s=5.0,
    session_timeout_ms=6000,
    python_tool_modules=["tests.actors"],
)


@dataclass
class Collector:
    """Everything on `events` and `results`, by task id, as it arrives."""

    events: dict[str, list[Event]] = field(default_factory=lambda: defaultdict(list))
    results: dict[str, list[AnyResult]] = field(default_factory=lambda: defaultdict(list))
    raw: dict[str, list[tuple[str, bytes]]] = field(default_factory=lambda: defaultdict(list))

    async def run(self, kafka: KafkaSettings, names: TopicNames, stop: asyncio.Event) -> None:
        consumer = make_consumer(kafka, group_id=None, fetch_max_wait_ms=50)
        try:
            await consumer.start()
            tps = [
                TopicPartition(topic, p)
                for topic in (names.events, names.results)
                for p in range(kafka.partitions)
            ]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100)
                for tp, records in batches.items():
                    for record in records:
                        try:
                            if tp.topic == names.results:
                                result: AnyResult = decode(record.value, AnyResult)
                                self.results[result.task_id].append(result)
                            else:
                                ev: Event = decode(record.value, Event)
                                self.events[ev.task_id].append(ev)
                        except MalformedMessage:
                            continue
        finally:
            await consumer.stop()

    def of_type(self, task_id: str, type_: str) -> list[Event]:
        return [e for e in self.events.get(task_id, []) if e.type == type_]


@dataclass
class Runtime:
    kafka: KafkaSettings
    names: TopicNames
    database_url: str
    schema: str
    collector: Collector = field(default_factory=Collector)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    watcher: CatalogWatcher | None = None
    authorizer: Authorizer | None = None

    def spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self.tasks.append(task)
        return task

    async def apply(
        self, paths: Sequence[Path], *, sealing_key: X25519PublicKey | None = None
    ) -> None:
        report = await apply_paths(self.kafka, self.names, list(paths), sealing_key=sealing_key)
        assert not report.errors, report.errors

    async def start(
        self,
        paths: Sequence[Path],
        *,
        actors: bool | Sequence[str] = True,
        dispatcher: bool = True,
        settings: ActorSettings = FAST_ACTOR,
        policy_settings: PolicySettings | None = None,
        sealing_key: X25519PublicKey | None = None,
        worker: str | None = None,
    ) -> None:
        """Apply `paths` (Secrets sealed to `sealing_key`), then run the services as `podium dev`
        builds them (the composition root): the policy service, the dispatcher, and one actor
        role serving `actors` (as Worker `worker`, when given)."""
        kafka, names = self.kafka, self.names
        await ensure_topics(kafka, names.core_topics())
        await self.apply(paths, sealing_key=sealing_key)
        self.watcher = CatalogWatcher(kafka, names)
        await self.watcher.start()
        await self.watcher.wait_for(lambda c: bool(c.routing), timeout=30)
        self.spawn(self.collector.run(kafka, names, self.stop), "collector")
        policy_settings = policy_settings or PolicySettings(
            signing_key=SIGNING_KEY, verify_keys=VERIFY_KEYS, approver_keys=APPROVER_PUBLIC
        )
        policy = composition.policy_service(
            kafka, policy_settings, DatabaseSettings(url=self.database_url), db_schema=self.schema
        )
        task = self.spawn(policy.run(self.stop), "policy")
        ready = asyncio.create_task(policy.ready.wait())
        await asyncio.wait([ready, task], timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        assert policy.ready.is_set()
        # The tests' own client of the policy service (the actors have theirs).
        self.authorizer = Authorizer(
            kafka,
            names,
            instance_id=f"t-{uuid.uuid4().hex[:8]}",
            verify_keys=parse_verify_keys(VERIFY_KEYS),
            timeout_s=10,
        )
        await self.authorizer.start()
        if dispatcher:
            role = composition.DispatcherRole(kafka, DispatcherSettings(grace_s=3))
            self.spawn(role.run(self.stop), role.name)
        agents = self.watcher.catalog.agents_in_systems() if actors is True else list(actors or [])
        if agents:
            actor_role = composition.ActorRole(
                kafka, agents, settings, policy_settings, worker=worker
            )
            self.spawn(actor_role.run(self.stop), actor_role.name)

    async def submit(
        self, system: str, text: str, *, task_id: str | None = None, timeout_s: float = 180
    ) -> str:
        """Send a `TaskRequested`. Its deadline (`timeout_s`) outlasts `result`'s wait: on a busy
        machine a task may take a minute and more (a rebalance re-runs its steps in flight), and
        it is to complete, not to fail on its deadline as the wait ends."""
        task = TaskRequested(
            task_id=task_id or f"task-{uuid.uuid4().hex[:10]}",
            system=system,
            input=text,
            submitted_at=utcnow(),
            timeout_s=timeout_s,
        )
        await self.send_raw(task.task_id.encode(), encode(task), headers_for(task))
        return task.task_id

    async def send_raw(
        self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        producer = make_producer(self.kafka)
        try:
            await producer.start()
            await producer.send_and_wait(self.names.tasks, key=key, value=value, headers=headers)
        finally:
            await producer.stop()

    async def result(self, task_id: str, timeout: float = 120) -> AnyResult:  # noqa: ASYNC109
        results = await wait_until(
            lambda: self.collector.results.get(task_id),
            timeout=timeout,
            message=f"a result for {task_id}",
        )
        return results[0]  # type: ignore[no-any-return]

    async def shutdown(self) -> None:
        self.stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 30)
        for task in self.tasks:
            if not task.done():
                task.cancel()
        if self.authorizer is not None:
            await self.authorizer.stop()
        if self.watcher is not None:
            await self.watcher.stop()


@pytest.fixture
async def runtime(
    kafka_settings: KafkaSettings, topic_names: TopicNames, database_url: str, pg_schema: str
) -> AsyncIterator[Runtime]:
    before = asyncio.all_tasks()
    rt = Runtime(kafka_settings, topic_names, database_url, pg_schema)
    try:
        yield rt
    finally:
        await rt.shutdown()
        for task in rt.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    await nothing_left_pending(before)


async def nothing_left_pending(before: set[asyncio.Task[Any]]) -> None:
    """Fail, naming them, when tasks made since `before` outlive the runtime's shutdown. The
    tests share one event loop: a leaked task would otherwise surface later, in whichever test
    runs when it is garbage collected ("Task was destroyed but it is pending!")."""

    def left() -> list[asyncio.Task[Any]]:
        me = asyncio.current_task()
        return [t for t in asyncio.all_tasks() - before if t is not me and not t.done()]

    with contextlib.suppress(AssertionError):
        await wait_until(lambda: not left(), timeout=10)
    assert not left(), f"pending after the runtime stopped: {[repr(t) for t in left()]}"
