"""What `podium get schedules` shows: the state of every schedule, and its next slot."""

from __future__ import annotations

from datetime import datetime

from aiokafka import TopicPartition

from manifests.models import TaskSchedule
from podium.core.settings import KafkaSettings
from scheduler.slots import Cron
from scheduler.state import ScheduleState, state_topic
from topics.kafka import make_consumer
from topics.messages import utcnow
from topics.names import TopicNames
from topics.tables import partitions_of


async def read_states(kafka: KafkaSettings, names: TopicNames) -> dict[str, ScheduleState]:
    """The latest state of every schedule ({} when the scheduler never ran)."""
    topic = state_topic(names)
    tps = [TopicPartition(topic, p) for p in await partitions_of(kafka, topic)]
    if not tps:
        return {}
    consumer = make_consumer(kafka, group_id=None, fetch_max_wait_ms=50)
    await consumer.start()
    states: dict[str, ScheduleState] = {}
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        for tp, end in ends.items():
            while await consumer.position(tp) < end:
                for record in (await consumer.getmany(tp, timeout_ms=200)).get(tp, []):
                    key = (record.key or b"").decode()
                    if record.value is None:
                        states.pop(key, None)
                    else:
                        try:
                            states[key] = ScheduleState.decode(record.value)
                        except ValueError:
                            continue
    finally:
        await consumer.stop()
    return states


def next_slot(
    schedule: TaskSchedule, state: ScheduleState | None, now: datetime | None = None
) -> datetime | None:
    """The next slot the scheduler will decide (None while suspended)."""
    if schedule.spec.suspend:
        return None
    now = now or utcnow()
    after = max(now, state.last_slot) if state and state.last_slot else now
    return Cron(schedule.spec.schedule, schedule.spec.time_zone).next_after(after)
