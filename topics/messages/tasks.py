"""`podium.tasks`: a request to run a task through an applied system."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from msgspec import Meta

from topics.messages._base import Message, Name, TaskId, TaskInput


class TaskRequested(Message, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A request to run a task through an applied system. Written by any service."""

    topic_doc: ClassVar[str] = "podium.tasks"

    task_id: TaskId
    system: Name
    input: TaskInput
    submitted_at: Annotated[
        datetime | None, Meta(description="When the task was submitted (RFC 3339).")
    ] = None
    timeout_s: (
        Annotated[
            float,
            Meta(gt=0, le=86400, description="Deadline of the task, seconds after submission."),
        ]
        | None
    ) = None
    submitted_by: Annotated[str, Meta(max_length=200, description="Who submitted it.")] = ""
    labels: Annotated[
        dict[str, str], Meta(description="Free-form labels, stored with the task.")
    ] = {}
