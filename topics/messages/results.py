"""`podium.results`: how a task ended."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

import msgspec
from msgspec import Meta

from topics.messages._base import Message, TaskId, utcnow


class TaskResult(Message, frozen=True, kw_only=True, tag_field="status"):
    task_id: TaskId
    system: str
    finished_at: datetime = msgspec.field(default_factory=utcnow)
    cost_usd: Annotated[float | None, Meta(description="Known cost of the task's model calls.")] = (
        None
    )
    total_tokens: int = 0
    unpriced_calls: Annotated[
        int,
        Meta(
            ge=0,
            description="Model calls whose price is unknown: `cost_usd` counts only the priced "
            "ones (null when none was priced).",
        ),
    ] = 0


class TaskCompleted(TaskResult, frozen=True, kw_only=True, tag="succeeded"):
    """The task finished; `output` is the final agent's answer."""

    topic_doc: ClassVar[str] = "podium.results"

    output: str


class TaskFailed(TaskResult, frozen=True, kw_only=True, tag="failed"):
    """The task failed; `error` says why, for a person."""

    topic_doc: ClassVar[str] = "podium.results"

    error: str
    failed_agent: str = ""


AnyResult = TaskCompleted | TaskFailed
