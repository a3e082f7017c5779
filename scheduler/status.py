"""What `podium get schedules` shows: the state of every schedule, and its next slot."""

from __future__ import annotations

from datetime import datetime

from manifests.models import TaskSchedule
from podium.core.settings import KafkaSettings
from scheduler.slots import Cron
from scheduler.state import ScheduleState, decode_states, state_topic
from topics.messages import utcnow
from topics.names import TopicNames
from topics.tables import read_latest


async def read_states(kafka: KafkaSettings, names: TopicNames) -> dict[str, ScheduleState]:
    """The latest state of every schedule ({} when the scheduler never ran)."""
    return decode_states(await read_latest(kafka, state_topic(names)))


def next_slot(
    schedule: TaskSchedule, state: ScheduleState | None, now: datetime | None = None
) -> datetime | None:
    """The next slot the scheduler will decide (None while suspended)."""
    if schedule.spec.suspend:
        return None
    now = now or utcnow()
    after = max(now, state.last_slot) if state and state.last_slot else now
    return Cron(schedule.spec.schedule, schedule.spec.time_zone).next_after(after)
