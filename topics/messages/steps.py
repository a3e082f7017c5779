"""`podium.agent.<agent>`: one unit of work for an agent role, and what it carries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

import msgspec
from msgspec import Meta, Struct

from topics.messages._base import JSONValue, Message, Name, TaskId, TaskInput, utcnow


class StepOutput(Struct, frozen=True, kw_only=True):
    """The output of a finished step, handed downstream."""

    agent: Name
    step_id: Annotated[str, Meta(description="The step that produced it.")]
    output: Annotated[str, Meta(description="The agent's final answer.")]
    outcome: Annotated[
        str | None, Meta(description="The outcome label the agent returned, if any.")
    ] = None


class Delegation(Struct, frozen=True, kw_only=True):
    """Where a delegated worker's result returns: the supervisor's parked conversation."""

    supervisor: Annotated[str, Meta(description="The supervisor agent.")]
    supervisor_step_id: Annotated[str, Meta(description="The supervisor's step waiting for it.")]
    tool_call_id: Annotated[str, Meta(description="The `delegate` call this answers.")]
    state: Annotated[
        dict[str, JSONValue], Meta(description="The supervisor's parked conversation.")
    ] = {}


class PathUsage(Struct, frozen=True, kw_only=True):
    """Model usage accumulated along a task's path up to a step (branches summed at a join)."""

    tokens: Annotated[int, Meta(ge=0, description="Input plus output tokens.")] = 0
    cost_usd: Annotated[
        float, Meta(ge=0, description="Cost of the priced calls (see `unpriced_calls`).")
    ] = 0.0
    priced_calls: Annotated[int, Meta(ge=0, description="Calls whose cost is known.")] = 0
    unpriced_calls: Annotated[
        int, Meta(ge=0, description="Calls whose price is unknown (not in `cost_usd`).")
    ] = 0

    def __add__(self, other: PathUsage) -> PathUsage:
        return PathUsage(
            tokens=self.tokens + other.tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            priced_calls=self.priced_calls + other.priced_calls,
            unpriced_calls=self.unpriced_calls + other.unpriced_calls,
        )

    def __sub__(self, other: PathUsage) -> PathUsage:
        """What `self` added to `other` (never below zero)."""
        return PathUsage(
            tokens=max(0, self.tokens - other.tokens),
            cost_usd=max(0.0, self.cost_usd - other.cost_usd),
            priced_calls=max(0, self.priced_calls - other.priced_calls),
            unpriced_calls=max(0, self.unpriced_calls - other.unpriced_calls),
        )


class JoinTicket(Struct, frozen=True, kw_only=True):
    """Marks a branch of a fan-out, so the join can tell when every branch has arrived."""

    join_id: Annotated[str, Meta(description="Unique per fan-out: the fanning step's id.")]
    branches: Annotated[int, Meta(ge=1, description="How many branches the join waits for.")]
    branch: Annotated[str, Meta(description="This branch's name (the agent it ran through).")]
    join_agent: Annotated[
        str, Meta(description="The agent that joins the branches; empty when none is known.")
    ] = ""
    base_usage: Annotated[
        PathUsage,
        Meta(description="The usage on the path when it fanned out; the join counts it once."),
    ] = msgspec.field(default_factory=PathUsage)


class ToolAnswer(Struct, frozen=True, kw_only=True):
    """A tool call's result, added to a parked conversation when it resumes."""

    tool_call_id: Annotated[str, Meta(description="The tool call this answers.")]
    name: Annotated[str, Meta(description="The tool that was called.")]
    content: Annotated[str, Meta(description="The result, as the model reads it.")] = ""


class ApprovalVerdict(Struct, frozen=True, kw_only=True):
    """The decision on the approval a parked step waits for."""

    approval_id: Annotated[str, Meta(description="The approval decided.")]
    decision: Annotated[
        Literal["granted", "denied", "expired"], Meta(description="What was decided.")
    ]
    decided_by: Annotated[str, Meta(description="Who decided (empty: the clock).")] = ""
    reason: Annotated[str, Meta(description="Why, for a person.")] = ""


class DelegationResume(Struct, frozen=True, kw_only=True, tag_field="kind", tag="delegation"):
    """A supervisor's parked step, resumed by its worker's answer."""

    conversation: Annotated[
        dict[str, JSONValue],
        Meta(description="The supervisor's parked conversation (read by the actor only)."),
    ] = {}
    tool_result: Annotated[
        ToolAnswer, Meta(description="The worker's answer to the `delegate` call.")
    ]


class ApprovalResume(Struct, frozen=True, kw_only=True, tag_field="kind", tag="approval"):
    """A step parked until a person decides on one of its tool calls."""

    conversation: Annotated[
        dict[str, JSONValue],
        Meta(description="The parked conversation (read by the actor only)."),
    ] = {}
    tool_call_id: Annotated[str, Meta(description="The tool call waiting for approval.")] = ""
    approval: Annotated[
        ApprovalVerdict | None,
        Meta(description="The decision; set by the policy service when the step resumes."),
    ] = None


Resume = DelegationResume | ApprovalResume
"""Why a parked step resumes, tagged by `kind`."""


class Step(Message, frozen=True, kw_only=True):
    """One unit of work for an agent role. Written by the dispatcher and by actors."""

    topic_doc: ClassVar[str] = "podium.agent.<agent>"

    task_id: TaskId
    system: Name
    agent: Name
    step_id: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=400,
            description="Deterministic id of this step within the task; with `task_id` it names "
            "the transition exactly once.",
        ),
    ]
    task_input: TaskInput
    upstream: Annotated[
        list[StepOutput], Meta(description="Outputs this step receives from upstream.")
    ] = []
    iterations: Annotated[
        dict[str, int],
        Meta(description="How often each agent has run on this path of the task, by agent."),
    ] = {}
    model_calls: Annotated[
        dict[str, int],
        Meta(description="How many model calls each agent has made on this path, by agent."),
    ] = {}
    join: JoinTicket | None = None
    delegation: Delegation | None = None
    instruction: Annotated[
        str | None, Meta(description="The supervisor's instruction, for a delegated step.")
    ] = None
    resume: Annotated[
        Resume | None,
        Meta(description="State of a parked step that resumes (delegation or approval)."),
    ] = None
    attempt: Annotated[int, Meta(ge=0, description="Retry attempt of this step, from 0.")] = 0
    deadline: Annotated[datetime | None, Meta(description="The task's deadline.")] = None
    created_at: datetime = msgspec.field(default_factory=utcnow)
    usage: Annotated[
        PathUsage,
        Meta(
            description="Model usage on the task's path before this run of the step (a resumed "
            "step's earlier calls included)."
        ),
    ] = msgspec.field(default_factory=PathUsage)
    join_stack: Annotated[
        list[JoinTicket],
        Meta(
            description="Every fan-out this step is a branch of, outermost first; the last is "
            "`join`. Empty from older writers: then `join` alone is the stack."
        ),
    ] = []
    abandoned: Annotated[
        str | None,
        Meta(
            description="Set on a notice to a join, not a step to run: this branch (`join`) "
            "failed with this error, so the join clears its waiting state and does not run."
        ),
    ] = None
