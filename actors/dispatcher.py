"""`DispatcherService`: turns each `TaskRequested` on `podium.tasks` into the first step(s).

In one transaction per task: the entry step(s) of the system's routing table (with the task's
deadline), the `task.requested` and `task.started` events, the task id in the started-tasks
changelog (`<prefix>.dispatcher.tasks`, compacted, partitioned like `podium.tasks`), and the
input offset. The same task id submitted again is found in that state (restored on assignment)
and ignored, with a log line. An unknown system, a malformed message or a bad schema version
goes to `podium.tasks.dlq` with the reason, with a `task.failed` event and a `TaskFailed` result
when a task id is readable. Nothing here crashes on a bad message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta

from aiokafka import ConsumerRecord

from actors.outbox import OutboxBuilder, is_task_id, pseudo_step, readable_key
from actors.poison import kept_for_letter
from actors.records import Outbox, PartitionContext
from actors.routing import entry_steps
from actors.settings import DispatcherSettings
from actors.transactions import TransactionalProcessor
from manifests.watcher import CatalogSource, catalog_when
from podium.core import tracing
from podium.core.logs import log_context
from podium.core.settings import KafkaSettings
from topics.codec import MalformedMessage, decode
from topics.kafka import ensure_topics, make_admin
from topics.messages import TaskRequested, TaskRequestedData, TaskStartedData, utcnow
from topics.names import TopicNames
from topics.routing import RoutingTable

log = logging.getLogger(__name__)


def started_tasks_topic(names: TopicNames) -> str:
    """The compacted changelog of the task ids the dispatcher has started."""
    return f"{names.prefix}.dispatcher.tasks"


def _task_id_of(value: bytes | None) -> str | None:
    """A task id from a message that did not decode as a whole, when one is readable."""
    if not value:
        return None
    try:
        data = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    task_id = data.get("task_id") if isinstance(data, dict) else None
    if isinstance(task_id, str) and 0 < len(task_id) <= 200:
        return task_id if is_task_id(task_id) else None
    return None


class DispatcherService:
    """`podium dispatcher`: the entry of every task."""

    name = "dispatcher"

    def __init__(
        self,
        kafka: KafkaSettings,
        names: TopicNames,
        *,
        settings: DispatcherSettings,
        catalog: CatalogSource,
    ) -> None:
        self._kafka = kafka
        self._names = names
        self._settings = settings
        self._catalog = catalog
        self._out = OutboxBuilder(names, source="dispatcher")
        self.processor = TransactionalProcessor(
            kafka,
            topic=names.tasks,
            group=names.dispatcher_group,
            handler=self.handle,
            on_poison=self.poisoned,
            changelog_topic=started_tasks_topic(names),
            max_attempts=settings.max_attempts,
            max_record_bytes=settings.max_record_bytes,
            max_in_flight=settings.max_in_flight,
            grace_s=settings.grace_s,
            session_timeout_ms=settings.session_timeout_ms,
            client_id=f"{names.prefix}.dispatcher",
        )

    async def ensure_topics(self) -> None:
        """The started-tasks changelog, with as many partitions as the tasks topic."""
        await ensure_topics(self._kafka, [self._names.tasks, self._names.tasks_dlq])
        admin = make_admin(self._kafka)
        try:
            await admin.start()
            described = await admin.describe_topics([self._names.tasks])
            partitions = len(described[0]["partitions"])
        finally:
            await admin.close()
        await ensure_topics(
            self._kafka,
            [started_tasks_topic(self._names)],
            compacted=[started_tasks_topic(self._names)],
            partitions=partitions,
        )

    async def run(self, stop: asyncio.Event) -> None:
        await self.ensure_topics()
        await self.processor.run(stop)

    async def handle(self, record: ConsumerRecord[bytes, bytes], ctx: PartitionContext) -> Outbox:
        async with tracing.span(
            "dispatch",
            parent=tracing.context_from_headers(record.headers),
            attributes={"messaging.kafka.partition": record.partition},
        ):
            return await self._handle(record, ctx)

    def poisoned(
        self, record: ConsumerRecord[bytes, bytes], ctx: PartitionContext, reason: str
    ) -> Outbox:
        """A task request that cannot be processed: to the DLQ, and its task failed."""
        error = f"the task could not be started: {reason}"
        kept, note = kept_for_letter(record, self.processor.limit)
        task_id = _task_id_of(record.value) or readable_key(record.key)
        outbox = self._out.dead_letter(
            kept, self._names.tasks_dlq, error + note, agent="", task_id=task_id
        )
        if task_id:
            self._out.task_failed(outbox, task_id, "", error)
        return outbox

    async def _handle(self, record: ConsumerRecord[bytes, bytes], ctx: PartitionContext) -> Outbox:
        names = self._names
        try:
            task: TaskRequested = decode(record.value, TaskRequested)
        except MalformedMessage as exc:
            task_id = _task_id_of(record.value) or readable_key(record.key)
            outbox = self._out.dead_letter(
                record, names.tasks_dlq, exc.reason, agent="", task_id=task_id
            )
            if task_id:
                self._out.task_failed(
                    outbox, task_id, "", f"the task request was rejected: {exc.reason}"
                )
            log.warning("rejected a task request at %s@%d: %s", record.topic, record.offset, exc)
            return outbox
        tracing.annotate(**{"podium.task_id": task.task_id, "podium.system": task.system})
        with log_context(task_id=task.task_id):
            if f"task:{task.task_id}" in ctx.state:
                log.info("task %s was already started; duplicate submission ignored", task.task_id)
                return Outbox()
            table = await self._table(task.system)
            if table is None:
                reason = f"system {task.system!r} is not applied (apply it with `podium apply`)"
                outbox = self._out.dead_letter(
                    record, names.tasks_dlq, reason, task_id=task.task_id, system=task.system
                )
                self._out.task_failed(outbox, task.task_id, task.system, reason)
                return outbox
            submitted = task.submitted_at or utcnow()
            timeout = task.timeout_s or self._settings.default_task_timeout_s
            deadline = submitted + timedelta(seconds=timeout)
            steps = entry_steps(
                table, task_id=task.task_id, task_input=task.input, deadline=deadline
            )
            outbox = Outbox()
            carrier = pseudo_step(task.task_id, task.system, "")
            self._out.event(
                outbox,
                carrier,
                TaskRequestedData(
                    input=task.input, submitted_by=task.submitted_by, labels=task.labels
                ),
                agent="",
            )
            self._out.event(
                outbox,
                carrier,
                TaskStartedData(entry=[s.agent for s in steps], deadline=deadline),
                agent="",
            )
            for step in steps:
                self._out.step(outbox, step)
            outbox.state[f"task:{task.task_id}"] = json.dumps(
                {"system": task.system, "started_at": utcnow().isoformat()}
            ).encode()
            log.info("task started: %s", ", ".join(s.agent for s in steps))
            return outbox

    async def _table(self, system: str) -> RoutingTable | None:
        """The routing table of `system`, waiting briefly for a catalog that is still loading."""
        catalog = await catalog_when(
            self._catalog, lambda c: system in c.routing, self._settings.catalog_wait_s
        )
        return catalog.routing.get(system)
