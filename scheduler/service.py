"""`SchedulerService`: starts the task template of each applied `TaskSchedule` on every due slot.

Exactly once per slot, with any number of replicas: the replicas form one consumer group over
the compacted state topic (`scheduler.state`), and a replica evaluates only the schedules whose
state partition it is assigned. Each partition has a transactional producer with a stable id
(`<group>.<partition>`); starting it fences a previous owner (its open transaction is aborted,
later ones fail), and only then is the partition's state read back. A firing is one transaction:
the `TaskRequested` of each fired slot (task id `<schedule>-<slot>`, `submitted_by
schedule/<name>`) and the schedule's new state. A crash before the commit leaves nothing: the
next owner fires the same slot under the same task id; a commit whose outcome was lost is
re-sent with that id, and the dispatcher drops the duplicate submission. Slots due while no
replica ran fire on takeover when they are within the schedule's `starting_deadline_seconds`.

Applied Tasks of mode run are run the same way (`scheduler.runs`): each has a state record,
`task:<name>`, written in the transaction of each attempt it submits, so a Task is submitted
once however often it is applied, and retried as its `retry` says. At each tick the work due is
submitted by priority: the high Tasks (and schedules of high templates) first, then normal, low.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError, ProducerFenced

from manifests.catalog import Catalog
from manifests.models import Task, TaskSchedule
from podium.core.settings import KafkaSettings
from scheduler._results import EndedTasks
from scheduler.runs import RunState, decide, decode_runs, request_for, state_key, work_order
from scheduler.settings import SchedulerSettings
from scheduler.slots import Cron, plan, task_id_for
from scheduler.state import (
    Run,
    ScheduleState,
    decode_states,
    partition_of,
    scheduler_group,
    state_topic,
)
from topics.codec import encode, headers_for
from topics.kafka import ensure_topics, make_admin, make_consumer, make_producer
from topics.messages import TaskRequested, utcnow
from topics.names import TopicNames
from topics.tables import read_latest

log = logging.getLogger(__name__)

SCHEDULE_LABEL = "orloj.dev/task-schedule"
SLOT_LABEL = "orloj.dev/task-schedule-slot"


class CatalogSource(Protocol):
    """What the scheduler reads of the applied manifests (`manifests.watcher.CatalogWatcher`)."""

    @property
    def catalog(self) -> Catalog: ...


@dataclass(slots=True)
class _Owned:
    producer: AIOKafkaProducer
    states: dict[str, ScheduleState]
    runs: dict[str, RunState]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    fenced: bool = False


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: SchedulerService) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._owner._revoke(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._owner._assign(list(assigned))


class SchedulerService:
    """`podium scheduler`: one replica of the scheduler group."""

    name = "scheduler"

    def __init__(
        self,
        kafka: KafkaSettings,
        names: TopicNames,
        *,
        settings: SchedulerSettings,
        catalog: CatalogSource,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._kafka = kafka
        self._names = names
        self._settings = settings
        self._catalog = catalog
        self._clock = clock
        self._topic = state_topic(names)
        self._group = scheduler_group(names)
        self._owned: dict[int, _Owned] = {}
        self._partitions = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._ended = EndedTasks(kafka, names.results, keep_s=settings.task_timeout_s)

    @property
    def owned(self) -> list[int]:
        return sorted(self._owned)

    async def run(self, stop: asyncio.Event) -> None:
        names = self._names
        await ensure_topics(self._kafka, [names.tasks, names.results])
        await ensure_topics(self._kafka, [self._topic], compacted=[self._topic])
        self._partitions = await self._count_partitions()
        await self._ended.start()
        consumer = make_consumer(
            self._kafka,
            group_id=self._group,
            client_id=self._group,
            session_timeout_ms=self._settings.session_timeout_ms,
            heartbeat_interval_ms=max(1000, self._settings.session_timeout_ms // 4),
            rebalance_timeout_ms=max(30_000, int(self._settings.grace_s * 2000)),
        )
        consumer.subscribe([self._topic], listener=_Listener(self))
        self._consumer = consumer
        await consumer.start()
        tick_ms = int(self._settings.tick_s * 1000)
        try:
            while not stop.is_set():
                # The state partitions are paused: this waits a tick and keeps the membership.
                await consumer.getmany(timeout_ms=tick_ms)
                await self._ended.poll()
                await self.tick()
        finally:
            await self._revoke(list(self._owned_tps()))
            with contextlib.suppress(Exception):
                await consumer.stop()
            self._consumer = None
            await self._ended.stop()

    def _owned_tps(self) -> list[TopicPartition]:
        return [TopicPartition(self._topic, p) for p in self._owned]

    async def _count_partitions(self) -> int:
        admin = make_admin(self._kafka)
        await admin.start()
        try:
            described = await admin.describe_topics([self._topic])
            return len(described[0]["partitions"])
        finally:
            await admin.close()

    # -- ownership ------------------------------------------------------------------------------

    async def _assign(self, assigned: list[TopicPartition]) -> None:
        for tp in assigned:
            if tp.partition in self._owned:
                continue
            producer = make_producer(
                self._kafka,
                transactional_id=f"{self._group}.{tp.partition}",
                client_id=f"{self._group}-{tp.partition}",
            )
            # InitProducerId: the previous owner's open transaction is aborted, its producer
            # fenced; what it committed is readable below.
            await producer.start()
            latest = await read_latest(self._kafka, tp.topic, partitions=[tp.partition])
            self._owned[tp.partition] = _Owned(
                producer=producer, states=decode_states(latest), runs=decode_runs(latest)
            )
            if self._consumer is not None:
                self._consumer.pause(tp)
        if assigned:
            log.info("scheduler owns state partitions %s", self.owned)

    async def _revoke(self, revoked: list[TopicPartition]) -> None:
        for tp in revoked:
            owned = self._owned.pop(tp.partition, None)
            if owned is None:
                continue
            async with owned.lock:
                with contextlib.suppress(Exception):
                    await owned.producer.stop()

    # -- evaluation -----------------------------------------------------------------------------

    async def tick(self) -> None:
        catalog = self._catalog.catalog
        now = self._clock()
        for key, item in work_order(catalog):
            owned = self._owned.get(partition_of(key, self._partitions))
            if owned is None or owned.fenced:
                continue
            async with owned.lock:
                if self._owned.get(partition_of(key, self._partitions)) is not owned:
                    continue
                if isinstance(item, Task):
                    await self._run(owned, item, now)
                else:
                    await self._evaluate(owned, item, catalog, now)

    async def _run(self, owned: _Owned, task: Task, now: datetime) -> None:
        """One step of an applied Task: submit an attempt, or record how one ended."""
        timeout_s = self._settings.task_timeout_s
        step = decide(
            task, owned.runs.get(task.name), now=now, ended=self._ended.outcome, timeout_s=timeout_s
        )
        if step.state is None:
            return
        requests = (
            [] if step.submit is None else [request_for(task, step.submit, timeout_s=timeout_s)]
        )
        key = state_key(task.name)
        if not await self._commit(owned, key, step.state.encode(), requests):
            return
        owned.runs[task.name] = step.state
        for request in requests:
            log.info(
                "task %s: submitted attempt %s as task %s",
                task.name,
                request.labels.get("orloj.dev/task-attempt"),
                request.task_id,
            )
        for note in step.notes:
            log.info("task %s: %s", task.name, note)
        if step.state.done:
            log.info("task %s: %s", task.name, step.state.phase)

    async def _commit(
        self, owned: _Owned, key: str, state: bytes, requests: list[TaskRequested]
    ) -> bool:
        """The tasks submitted and the new state of `key`, in one transaction."""
        partition = partition_of(key, self._partitions)
        try:
            async with owned.producer.transaction():
                for request in requests:
                    await owned.producer.send(
                        self._names.tasks,
                        key=request.task_id.encode(),
                        value=encode(request),
                        headers=headers_for(request),
                    )
                await owned.producer.send(
                    self._topic, key=key.encode(), value=state, partition=partition
                )
        except ProducerFenced:
            log.warning(
                "state partition %d has a newer owner; this replica stops firing it", partition
            )
            owned.fenced = True
            return False
        except KafkaError as exc:
            log.warning("%s: the transaction failed (%s); retried next tick", key, exc)
            return False
        return True

    async def _evaluate(
        self, owned: _Owned, schedule: TaskSchedule, catalog: Catalog, now: datetime
    ) -> None:
        name, spec = schedule.name, schedule.spec
        previous = owned.states.get(name)
        state = previous or ScheduleState(schedule=name, since=now)
        state = self._settle(state, spec.successful_history_limit, spec.failed_history_limit, now)
        decided = plan(
            Cron(spec.schedule, spec.time_zone),
            now=now,
            last_slot=state.last_slot,
            since=state.since,
            window_s=spec.starting_deadline_seconds,
            policy=spec.concurrency_policy,
            active=bool(state.active),
            suspended=spec.suspend,
            limit=self._settings.max_slots_per_tick,
        )
        if not decided.changed and state == previous:
            return
        template = catalog.tasks[spec.task_name]
        requests = [
            TaskRequested(
                task_id=task_id_for(name, slot),
                system=template.spec.system,
                input=dict(template.spec.input) or "",
                submitted_at=now,
                timeout_s=self._settings.task_timeout_s,
                submitted_by=f"schedule/{name}",
                labels={
                    **template.metadata.labels,
                    SCHEDULE_LABEL: name,
                    SLOT_LABEL: slot.isoformat(),
                },
            )
            for slot in decided.fire
        ]
        runs = [
            Run(task_id=r.task_id, slot=s, fired_at=now)
            for r, s in zip(requests, decided.fire, strict=True)
        ]
        new = ScheduleState(
            schedule=name,
            since=state.since,
            last_slot=decided.last_slot,
            last_fired_at=now if runs else state.last_fired_at,
            last_task_id=runs[-1].task_id if runs else state.last_task_id,
            active=[*state.active, *runs],
            succeeded=state.succeeded,
            failed=state.failed,
        )
        if not await self._commit(owned, name, new.encode(), requests):
            return
        owned.states[name] = new
        for skip in decided.skip:
            log.info(
                "schedule %s: slot %s skipped (%s: a run is active)",
                name,
                skip.slot.isoformat(),
                skip.reason,
            )
        if decided.missed:
            log.warning(
                "schedule %s: slots older than %d s were missed",
                name,
                spec.starting_deadline_seconds,
            )
        for run in runs:
            log.info(
                "schedule %s: slot %s fired as task %s", name, run.slot.isoformat(), run.task_id
            )

    def _settle(
        self, state: ScheduleState, keep_ok: int, keep_failed: int, now: datetime
    ) -> ScheduleState:
        """Runs with a result (or past their deadline) leave `active` for the history."""
        timeout = timedelta(seconds=self._settings.task_timeout_s)
        active: list[Run] = []
        ok, failed = list(state.succeeded), list(state.failed)
        for run in state.active:
            ended = self._ended.status(run.task_id)
            if ended is not None:
                done = Run(
                    task_id=run.task_id,
                    slot=run.slot,
                    fired_at=run.fired_at,
                    status=ended[0],
                    finished_at=ended[1],
                )
                (ok if ended[0] == "succeeded" else failed).append(done)
            elif now - run.fired_at > timeout:
                failed.append(
                    Run(task_id=run.task_id, slot=run.slot, fired_at=run.fired_at, status="expired")
                )
            else:
                active.append(run)
        if len(active) == len(state.active):
            return state
        return ScheduleState(
            schedule=state.schedule,
            since=state.since,
            last_slot=state.last_slot,
            last_fired_at=state.last_fired_at,
            last_task_id=state.last_task_id,
            active=active,
            succeeded=ok[-keep_ok:] if keep_ok else [],
            failed=failed[-keep_failed:] if keep_failed else [],
        )
