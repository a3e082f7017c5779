"""Builds the records of a step's transaction: next steps, events, results, dead letters.

Events written inside a transaction get deterministic ids (`<step_id>:<type>`), so a re-run of a
step that was aborted writes the same ids, and the ledger's dedupe on `event_id` keeps one.
Every record carries the current W3C trace context in its headers.
"""

from __future__ import annotations

import re
from typing import Any

from aiokafka import ConsumerRecord

from actors.records import Outbox, OutRecord
from actors.transition import (
    CompleteTask,
    EmitEvent,
    FailStep,
    RequestApproval,
    SendStep,
    Transition,
)
from podium.core import tracing
from topics.codec import encode, headers_for
from topics.dlq import dead_letter
from topics.messages import (
    DeadLetter,
    Message,
    MessageDeadLetteredData,
    PathUsage,
    Payload,
    Step,
    StepFailedData,
    StepOutput,
    TaskCompleted,
    TaskCompletedData,
    TaskFailed,
    TaskFailedData,
    event,
    event_id_of,
)
from topics.names import TopicNames

_TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}$")


def is_task_id(text: str) -> bool:
    """Whether `text` is a well-formed task id (what `TaskId` accepts)."""
    return _TASK_ID.match(text) is not None


class OutboxBuilder:
    def __init__(self, names: TopicNames, *, source: str) -> None:
        self._names = names
        self._source = source

    def raw(self, outbox: Outbox, topic: str, key: str, message: Message) -> None:
        outbox.add(
            OutRecord(
                topic=topic,
                key=key.encode(),
                value=encode(message),
                headers=headers_for(message, tracing.trace_headers()),
            )
        )

    def event(
        self,
        outbox: Outbox,
        step: Step,
        payload: Payload,
        *,
        suffix: str | None = None,
        agent: str | None = None,
    ) -> None:
        trace_id, span_id = tracing.current_ids()
        ev = event(
            payload,
            event_id=event_id_of(step.task_id, step.step_id, suffix or payload.event_type),
            task_id=step.task_id,
            system=step.system,
            agent=agent if agent is not None else step.agent,
            step_id=step.step_id,
            attempt=step.attempt,
            trace_id=trace_id,
            span_id=span_id,
            source=self._source,
        )
        self.raw(outbox, self._names.events, step.task_id, ev)

    def step(self, outbox: Outbox, step: Step) -> None:
        self.raw(outbox, self._names.agent(step.agent), step.task_id, step)

    def apply(
        self, outbox: Outbox, step: Step, transition: Transition, *, dlq: str, letter: bool = True
    ) -> None:
        """The records of `step`'s transition, in order; a failure's dead letter goes to `dlq`
        (`letter=False`: the caller dead-letters the input record itself)."""
        for effect in transition.effects:
            if isinstance(effect, SendStep):
                self.step(outbox, effect.step)
            elif isinstance(effect, EmitEvent):
                self.event(outbox, step, effect.payload, suffix=effect.suffix)
            elif isinstance(effect, CompleteTask):
                self.task_completed(outbox, step, effect.output, usage=effect.usage)
            elif isinstance(effect, FailStep):
                self.fail_step(
                    outbox, step, effect.error, dlq=dlq, usage=effect.usage, letter=letter
                )
            else:
                assert isinstance(effect, RequestApproval)
                self.raw(outbox, self._names.approvals, step.task_id, effect.request)

    def task_completed(
        self, outbox: Outbox, step: Step, output: StepOutput, *, usage: PathUsage
    ) -> None:
        """The task ended with `step`; `usage` is the whole path's, this step included."""
        self.event(outbox, step, TaskCompletedData(output=output.output))
        result = TaskCompleted(
            task_id=step.task_id, system=step.system, output=output.output, **_totals(usage)
        )
        self.raw(outbox, self._names.results, step.task_id, result)

    def fail_step(
        self,
        outbox: Outbox,
        step: Step,
        error: str,
        *,
        dlq: str,
        usage: PathUsage | None = None,
        letter: bool = True,
    ) -> None:
        """The step failed for good: DLQ it (unless `letter=False`), fail the task with a
        readable error. `usage` is the path's usage up to the failure (the step's own calls
        included)."""
        if letter:
            dead = DeadLetter(
                topic=self._names.agent(step.agent),
                partition=-1,
                offset=-1,
                key=step.task_id.encode(),
                value=encode(step),
                reason=error,
                service=self._source,
            )
            self.raw(outbox, dlq, step.task_id, dead)
        self.event(outbox, step, StepFailedData(error=error))
        self.task_failed(
            outbox,
            step.task_id,
            step.system,
            error,
            agent=step.agent,
            step=step,
            usage=usage if usage is not None else step.usage,
        )

    def task_failed(
        self,
        outbox: Outbox,
        task_id: str,
        system: str,
        error: str,
        *,
        agent: str = "",
        step: Step | None = None,
        usage: PathUsage | None = None,
    ) -> None:
        carrier = step or pseudo_step(task_id, system, agent)
        self.event(outbox, carrier, TaskFailedData(error=error), agent=agent)
        result = TaskFailed(
            task_id=task_id,
            system=system,
            error=error,
            failed_agent=agent,
            **_totals(usage or PathUsage()),
        )
        self.raw(outbox, self._names.results, task_id, result)

    def dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        dlq: str,
        reason: str,
        *,
        agent: str = "",
        task_id: str | None = None,
        system: str = "",
    ) -> Outbox:
        """A message that cannot be processed: DLQ with the reason, and an event when possible."""
        outbox = Outbox()
        letter = dead_letter(record, reason, service=self._source)
        outbox.add(
            OutRecord(
                topic=dlq,
                key=record.key,
                value=encode(letter),
                headers=headers_for(letter, tracing.trace_headers()),
            )
        )
        tid = task_id or readable_key(record.key)
        if tid:
            carrier = pseudo_step(
                tid, system, agent, step_id=f"{record.topic}@{record.partition}:{record.offset}"
            )
            self.event(
                outbox,
                carrier,
                MessageDeadLetteredData(
                    topic=record.topic,
                    dlq_topic=dlq,
                    partition=record.partition,
                    offset=record.offset,
                    reason=reason,
                ),
                agent=agent,
            )
        return outbox


def _totals(usage: PathUsage) -> dict[str, Any]:
    """A result's cost fields: the cost of the priced calls (None when no call was priced)."""
    return {
        "cost_usd": usage.cost_usd if usage.priced_calls else None,
        "total_tokens": usage.tokens,
        "unpriced_calls": usage.unpriced_calls,
    }


def readable_key(key: bytes | None) -> str | None:
    if not key:
        return None
    try:
        text = key.decode()
    except UnicodeDecodeError:
        return None
    return text if is_task_id(text) else None


def pseudo_step(task_id: str, system: str, agent: str, *, step_id: str = "task") -> Step:
    """An envelope for task-level events that belong to no step."""
    return Step(
        task_id=task_id,
        system=system or "unknown",
        agent=agent or "dispatcher",
        step_id=step_id,
        task_input="",
    )
