"""Bad input on every topic a service consumes; each ends in the DLQ or a clean rejection with
the reason, and no consumer stops.

On every partition of the topic: random bytes, truncated JSON, wrong types, an unknown schema
version, a 5 MB payload and a task_id of 10,000 characters. Each record must end up either in
`<topic>.dlq` (a `DeadLetter` naming its partition and offset, with a reason) or, when the
topic's schema accepts it (the 5 MB payload is in a field without a length limit), handled: run,
answered or stored. Then a valid message on every partition is processed: the consumer of each
partition is still running. Each test prints what became of each kind.

- `tasks` (dispatcher), `agent.writer` (actor), `policy.requests` (policy service): the actor
  tests' in-process runtime, with the research pipeline (mock model) applied;
- `events` and `results` (ledger): `LedgerService` on the test's schema.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import msgspec
import pytest

from ledger.service import LedgerService
from ledger.settings import LedgerSettings
from podium.core.settings import DatabaseSettings, KafkaSettings
from tests.actors.conftest import RESEARCH_FILES, Runtime
from tests.badinput.conftest import Sent, dead_letters, send_all
from tests.badinput.payloads import KINDS, ids_per_partition
from tests.helpers import wait_until
from topics.codec import encode, headers_for
from topics.kafka import ensure_topics, make_producer
from topics.messages import (
    Action,
    AuthorizationRequest,
    DecisionKind,
    Step,
    TaskCompleted,
    TaskRequested,
    TaskRequestedData,
    event,
    utcnow,
)
from topics.names import TopicNames

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SYSTEM = "research-pipeline"


def _report(topic: str, sent: list[Sent], letters: dict[tuple[int, int], str]) -> None:
    outcome = {s.kind: "dlq" if (s.partition, s.offset) in letters else "handled" for s in sent}
    dlq = sum((s.partition, s.offset) in letters for s in sent)
    print(f"\nbadinput {topic}: {len(sent)} bad records, {dlq} dead-lettered; {outcome}")


async def _outcomes(
    kafka: KafkaSettings,
    dlq: str,
    source: str,
    sent: list[Sent],
    handled: set[str] | None = None,
    may_pass: frozenset[str] = frozenset({"5mb-payload"}),
) -> dict[tuple[int, int], str]:
    """Wait until every bad record is dead-lettered with a reason, or, for the kinds in
    `may_pass` (well-formed by the topic's schema), in `handled` (answered, run or stored);
    return the DLQ's reasons."""
    letters: dict[tuple[int, int], str] = {}

    async def settled() -> bool:
        nonlocal letters
        letters = await dead_letters(kafka, dlq, source)
        return all(
            (s.partition, s.offset) in letters
            or (s.kind in may_pass and handled is not None and s.task_id in handled)
            for s in sent
        )

    try:
        await wait_until(settled, timeout=90, interval=0.5)
    except AssertionError:
        open_ = [
            s
            for s in sent
            if (s.partition, s.offset) not in letters
            and not (s.kind in may_pass and handled is not None and s.task_id in handled)
        ]
        what = [(s.kind, s.partition, s.offset, s.task_id[:40]) for s in open_]
        raise AssertionError(f"{source}: not dead-lettered nor handled: {what}") from None
    for s in sent:
        reason = letters.get((s.partition, s.offset))
        if reason is not None:
            assert reason.strip(), f"{s.kind}: empty reason"
    for kind in KINDS:
        if kind not in may_pass:
            assert all((s.partition, s.offset) in letters for s in sent if s.kind == kind), kind
    _report(source, sent, letters)
    return letters


async def test_dispatcher_survives_bad_tasks(runtime: Runtime) -> None:
    await runtime.start(RESEARCH_FILES)
    kafka, names = runtime.kafka, runtime.names

    def make(task_id: str) -> msgspec.Struct:
        return TaskRequested(task_id=task_id, system=SYSTEM, input="hi", submitted_at=utcnow())

    sent = await send_all(kafka, names.tasks, make, "input", "tasks")
    valid = ids_per_partition(f"ok-{uuid.uuid4().hex[:6]}", kafka.partitions)
    for task_id in valid.values():
        # the task's own deadline: long enough for a busy machine (the result wait is 120 s)
        await runtime.submit(SYSTEM, "Valid after the bad ones.", task_id=task_id, timeout_s=180)
    for task_id in valid.values():
        assert isinstance(await runtime.result(task_id, timeout=120), TaskCompleted)
    letters = await _outcomes(
        kafka, names.tasks_dlq, names.tasks, sent, handled=set(runtime.collector.results)
    )
    # a rejected request that names a readable task id gets a failed result with the reason
    wrong = next(s for s in sent if s.kind == "unknown-schema-version")
    assert "schema_version" in letters[(wrong.partition, wrong.offset)]


async def test_actor_survives_bad_steps(runtime: Runtime) -> None:
    await runtime.start(RESEARCH_FILES, dispatcher=False, actors=["writer"])
    kafka, names = runtime.kafka, runtime.names
    inbox = names.agent("writer")

    def make(task_id: str) -> msgspec.Struct:
        return Step(
            task_id=task_id,
            system=SYSTEM,
            agent="writer",
            step_id=f"{task_id}/writer",
            task_input="hi",
            deadline=utcnow() + timedelta(seconds=120),
        )

    sent = await send_all(kafka, inbox, make, "task_input", "steps")
    valid = ids_per_partition(f"ok-{uuid.uuid4().hex[:6]}", kafka.partitions)
    producer = make_producer(kafka)
    try:
        await producer.start()
        for partition, task_id in valid.items():
            step = make(task_id)
            await producer.send_and_wait(
                inbox,
                encode(step),
                key=task_id.encode(),
                partition=partition,
                headers=headers_for(step),
            )
    finally:
        await producer.stop()
    for task_id in valid.values():
        assert isinstance(await runtime.result(task_id, timeout=120), TaskCompleted)
    await _outcomes(
        kafka, names.agent_dlq("writer"), inbox, sent, handled=set(runtime.collector.results)
    )


async def test_policy_service_survives_bad_requests(runtime: Runtime) -> None:
    await runtime.start(RESEARCH_FILES, dispatcher=False, actors=False)
    kafka, names = runtime.kafka, runtime.names
    reply_topic = names.replies(f"badinput-{uuid.uuid4().hex[:6]}")
    await ensure_topics(kafka, [reply_topic])

    def make(task_id: str) -> msgspec.Struct:
        return AuthorizationRequest(
            request_id=f"req-{task_id}",
            task_id=task_id,
            system=SYSTEM,
            agent="writer",
            step_id=f"{task_id}/writer",
            action=Action.MODEL_CALL,
            model="gpt-4o",
            endpoint="openai",
            reply_to=reply_topic,
            deadline=utcnow() + timedelta(seconds=60),
        )

    sent = await send_all(kafka, names.policy_requests, make, "arguments_digest", "policy")
    assert runtime.authorizer is not None
    valid = ids_per_partition(f"ok-{uuid.uuid4().hex[:6]}", kafka.partitions)
    decisions = await asyncio.gather(
        *(
            runtime.authorizer.authorize(
                task_id=task_id,
                system=SYSTEM,
                agent="writer",
                step_id=f"{task_id}/writer",
                action=Action.MODEL_CALL,
                model="gpt-4o",
                endpoint="openai",
                timeout_s=30,
            )
            for task_id in valid.values()
        )
    )
    # answered by the service (signed), not the client's fail-closed stand-in
    assert [d.decision for d in decisions] == [DecisionKind.ALLOW] * len(valid), decisions
    answered = {
        e.task_id
        for events in runtime.collector.events.values()
        for e in events
        if e.type == "policy.decided"
    }
    await _outcomes(kafka, names.policy_requests_dlq, names.policy_requests, sent, answered)


async def test_ledger_survives_bad_events_and_results(
    kafka_settings: KafkaSettings, topic_names: TopicNames, database_url: str, pg_schema: str
) -> None:
    kafka, names = kafka_settings, topic_names
    settings = LedgerSettings(
        schema_name=pg_schema, api_port=0, batch_size=200, flush_interval_s=0.05
    )
    service = LedgerService(settings, DatabaseSettings(url=database_url), kafka, api=False)
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    try:
        await ensure_topics(kafka, names.core_topics())

        def make_event(task_id: str) -> msgspec.Struct:
            return event(TaskRequestedData(input="hi"), event_id=f"e-{task_id}", task_id=task_id)

        def make_result(task_id: str) -> msgspec.Struct:
            return TaskCompleted(task_id=task_id, system=SYSTEM, output="done")

        sent_events = await send_all(kafka, names.events, make_event, "event_id", "events")
        sent_results = await send_all(kafka, names.results, make_result, "output", "results")
        valid = ids_per_partition(f"ok-{uuid.uuid4().hex[:6]}", kafka.partitions)
        producer = make_producer(kafka)
        try:
            await producer.start()
            for partition, task_id in valid.items():
                for topic, message in (
                    (names.events, make_event(task_id)),
                    (names.results, make_result(task_id)),
                ):
                    await producer.send_and_wait(
                        topic, encode(message), key=task_id.encode(), partition=partition
                    )
        finally:
            await producer.stop()

        async def task_rows() -> dict[str, str]:
            conn = await asyncpg.connect(database_url)
            try:
                rows = await conn.fetch(
                    f'SELECT task_id, status FROM "{pg_schema}".tasks UNION ALL '
                    f"SELECT DISTINCT task_id, 'event' FROM \"{pg_schema}\".events"
                )
            finally:
                await conn.close()
            found: dict[str, str] = {}
            for row in rows:
                found.setdefault(row["task_id"], row["status"])
            return found

        async def valid_stored() -> bool:
            rows = await task_rows()
            return all(rows.get(t) == "succeeded" for t in valid.values())

        await wait_until(valid_stored, timeout=60, interval=0.5)
        assert not running.done()
        await _outcomes(kafka, f"{names.events}.dlq", names.events, sent_events)
        # `TaskResult.task_id` is a plain `str` in the wire contract (no length limit, unlike
        # `TaskId` everywhere else): the ledger stores such a result as it is, under that id
        await _outcomes(
            kafka,
            f"{names.results}.dlq",
            names.results,
            sent_results,
            set(await task_rows()),
            may_pass=frozenset({"5mb-payload"}),
        )
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
