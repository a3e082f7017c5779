"""Podium's services as separate OS processes (`.venv/bin/podium ...`), as in production.

`Cluster` starts, kills (SIGKILL) and stops named processes of one test, all on the shared broker
under the test's topic prefix and, for the ledger, in the test's PostgreSQL schema. Each process
leads a process group of its own (`tests.helpers.start_child`), which ends with the test run
however that run ends (an interrupted run leaves nothing behind). The processes get a private
`PODIUM_STACK_DIR` (so `podium ledger` never rewrites the shared stack's state file) and every
setting explicitly through the environment.

Also here: `read_topic` (a topic from the beginning to its end, read_committed), `ledger_counts`
(stored events per task), `kafka_event_ids` (what Kafka holds per task: distinct event ids on
`events`, distinct records on `results`), `wait_ledger_matches_kafka` and `inbox_step_ids`.

A scenario waits for its processes to be ready (`Cluster.wait_ready`: each logged
`podium.core.lifecycle.READY_LINE`) before its clock starts: starting a process costs seconds of
CPU (imports, group joins), many more on a busy machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from aiokafka import ConsumerRecord, TopicPartition

from podium.core.lifecycle import READY_LINE
from podium.core.settings import KafkaSettings
from tests.conftest import ROOT
from tests.helpers import (
    kafka_env,
    key_pair,
    kill_child,
    scaled,
    start_child,
    stop_children,
    wait_for_line,
    wait_until,
)
from topics.codec import MalformedMessage, decode, encode, headers_for
from topics.kafka import make_admin, make_consumer, make_producer
from topics.messages import AnyResult, Event, Step, TaskRequested, utcnow
from topics.names import TopicNames

PODIUM = ROOT / ".venv" / "bin" / "podium"
SIGNING_KEY, VERIFY_KEYS = key_pair("test-faults")
ANCHOR_KEY = "11" * 32
"""The ledger's anchor signing key in these scenarios (64 hex digits)."""


@dataclass
class Cluster:
    """Named `podium` processes of one test; `close()` stops whatever still runs."""

    kafka: KafkaSettings
    database_url: str
    home: Path
    ledger_schema: str = ""
    env_extra: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    log_files: dict[str, Path] = field(default_factory=dict)
    kills: int = 0
    _serial: int = 0

    def env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PODIUM_", "PYTEST_", "OTEL_"))
        }
        env.update(
            {
                "PODIUM_STACK_DIR": str(self.home),
                **kafka_env(self.kafka),
                "PODIUM_DATABASE_URL": self.database_url,
                "PODIUM_POLICY_SIGNING_KEY": SIGNING_KEY,
                "PODIUM_POLICY_VERIFY_KEYS": VERIFY_KEYS,
                "PODIUM_ACTOR_SESSION_TIMEOUT_MS": "6000",
                "PODIUM_ACTOR_GRACE_S": "3",
                "PODIUM_ACTOR_MAX_IN_FLIGHT": "16",
                "PODIUM_ACTOR_PYTHON_TOOL_MODULES": "tests.actors",
                "PODIUM_ACTOR_STEP_RETRY_BACKOFF_S": "0.2",
                "PODIUM_DISPATCHER_SESSION_TIMEOUT_MS": "6000",
                "PODIUM_DISPATCHER_GRACE_S": "2",
                "PODIUM_LEDGER_API_PORT": "0",
                "PODIUM_LEDGER_SCHEMA": self.ledger_schema or "podium",
                "PODIUM_LEDGER_BATCH_SIZE": "500",
                "PODIUM_LEDGER_ANCHOR_KEY": ANCHOR_KEY,
            }
        )
        env.update(self.env_extra)
        return env

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """`podium ARGS` as the process `name` (its output in `<home>/<name>.<n>.log`)."""
        self._serial += 1
        log = self.home / f"{name.replace(':', '-')}.{self._serial}.log"
        with log.open("wb") as out:
            proc = start_child(
                [str(PODIUM), *args],
                cwd=self.home,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        self.log_files[name] = log
        return proc

    async def wait_ready(self, *names: str, timeout: float = 180.0) -> None:  # noqa: ASYNC109
        """Wait until each named process (all by default) has logged its ready line: its
        consumers have their partitions, its API listens. A scenario's clock starts here."""
        await asyncio.gather(
            *(
                wait_for_line(self.log_files[name], READY_LINE, self.procs[name], timeout=timeout)
                for name in names or list(self.procs)
            )
        )

    def kill(self, name: str) -> None:
        """SIGKILL (to the process's group): no drain, no commit, no goodbye to the group."""
        kill_child(self.procs.pop(name))
        self.kills += 1

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def logs(self, name_part: str = "") -> str:
        """The tail of every log whose name contains `name_part` (for failure messages)."""
        parts = []
        for log in sorted(self.home.glob("*.log")):
            if name_part in log.name:
                parts.append(f"--- {log.name}\n" + log.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def close(self) -> None:
        """SIGTERM to every process still running, SIGKILL after 20 s."""
        stop_children(self.procs.values(), grace_s=20)
        self.procs.clear()


async def submit(
    kafka: KafkaSettings, names: TopicNames, system: str, task_ids: list[str], timeout_s: float
) -> None:
    """One `TaskRequested` per id onto `tasks`, as any client would produce it."""
    producer = make_producer(kafka)
    try:
        await producer.start()
        for task_id in task_ids:
            task = TaskRequested(
                task_id=task_id,
                system=system,
                input=f"Assess case {task_id}.",
                submitted_at=utcnow(),
                timeout_s=timeout_s,
            )
            await producer.send(
                names.tasks, encode(task), key=task_id.encode(), headers=headers_for(task)
            )
        await producer.flush()
    finally:
        await producer.stop()


async def read_topic(
    kafka: KafkaSettings,
    topic: str,
    timeout: float = 60.0,  # noqa: ASYNC109 (a deadline for the reading)
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record of `topic`, from the beginning to its current end (within
    `scaled(timeout)`)."""
    timeout = scaled(timeout)
    partitions = await _partitions(kafka, topic)
    if not partitions:
        return []
    consumer = make_consumer(kafka, group_id=None, fetch_max_wait_ms=50)
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if loop.time() > deadline:
                raise AssertionError(f"{topic} not read to its end within {timeout} s")
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def _partitions(kafka: KafkaSettings, topic: str) -> list[int]:
    """The partition ids of `topic` (none when it does not exist)."""
    admin = make_admin(kafka)
    try:
        await admin.start()
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(
        p["partition"]
        for t in described
        if t["topic"] == topic and not t.get("error_code")
        for p in t["partitions"]
    )


async def kafka_event_ids(kafka: KafkaSettings, names: TopicNames) -> dict[str, set[str]]:
    """What Kafka holds per task, as the ledger must store it: the distinct event ids on `events`
    (a re-run step repeats some with the same id), and one entry per distinct record on
    `results` (the ledger keeps each result in the task's trail too)."""
    ids: dict[str, set[str]] = defaultdict(set)
    for record in await read_topic(kafka, names.events):
        try:
            ev: Event = decode(record.value, Event)
        except MalformedMessage:
            continue
        ids[ev.task_id].add(ev.event_id)
    for record in await read_topic(kafka, names.results):
        try:
            result: AnyResult = decode(record.value, AnyResult)
        except MalformedMessage:
            continue
        ids[result.task_id].add("result:" + hashlib.sha256(record.value or b"").hexdigest())
    return ids


async def ledger_counts(database_url: str, schema: str) -> dict[str, int]:
    """Stored events per task in the ledger's schema (empty until its tables exist)."""
    conn = await asyncpg.connect(database_url)
    try:
        exists = await conn.fetchval("SELECT to_regclass($1)", f'"{schema}".events')
        if exists is None:
            return {}
        rows = await conn.fetch(
            f'SELECT task_id, count(*) AS n FROM "{schema}".events GROUP BY task_id'
        )
    finally:
        await conn.close()
    return {row["task_id"]: row["n"] for row in rows}


async def inbox_step_ids(kafka: KafkaSettings, topic: str) -> list[tuple[str, str]]:
    """The (task, step) of every Step an agent inbox holds, in order, duplicates kept."""
    ids = []
    for record in await read_topic(kafka, topic):
        step: Step = decode(record.value, Step)
        ids.append((step.task_id, step.step_id))
    return ids


async def wait_ledger_matches_kafka(
    cluster: Cluster, names: TopicNames, task_ids: list[str], *, within_s: float
) -> int:
    """Wait until the ledger stores, for every task, exactly what Kafka holds; return how many
    events that is. Fails naming the tasks whose counts differ."""
    in_kafka = await kafka_event_ids(cluster.kafka, names)
    expected = {t: len(in_kafka[t]) for t in task_ids}
    stored: dict[str, int] = {}

    async def caught_up() -> bool:
        nonlocal stored
        stored = await ledger_counts(cluster.database_url, cluster.ledger_schema)
        return all(stored.get(t) == n for t, n in expected.items())

    try:
        await wait_until(caught_up, timeout=within_s, interval=0.5)
    except AssertionError:
        wrong = {t: (stored.get(t), n) for t, n in expected.items() if stored.get(t) != n}
        raise AssertionError(f"ledger != kafka for {len(wrong)} tasks: {wrong}") from None
    return sum(expected.values())


def unique_ids(prefix: str, n: int) -> list[str]:
    run = uuid.uuid4().hex[:6]
    return [f"{prefix}-{run}-{i:03d}" for i in range(n)]
