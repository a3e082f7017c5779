"""Operators' controls on the real stack: pausing, resuming and throttling reach every policy
replica, and each control is recorded as an event, then in the ledger."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from aiokafka.partitioner import DefaultPartitioner

from ledger.service import LedgerService
from ledger.settings import LedgerSettings
from podium.core.settings import DatabaseSettings, KafkaSettings
from podium.stack import credentials, load_state
from policy_service.client import Authorizer
from policy_service.control_topic import write_control
from tests.helpers import wait_until
from tests.policy.conftest import PolicyHarness, Running
from tests.policy.test_service import model_call, tool_call
from topics.acl_admin import create_acls
from topics.acls import Role, acl_bindings
from topics.codec import decode
from topics.messages import Control, ControlChangedData, Event, payload_of
from topics.names import TopicNames
from topics.tables import partitions_of, read_table

pytestmark = pytest.mark.integration

DEADLINE_S = 20.0
"""Generous: a control reaches a replica within a fetch (about 0.1 s) on a quiet machine."""


def pause(target: str, **fields: Any) -> Control:
    return Control(target=target, state="paused", set_by="ana", reason="incident 42", **fields)


def resume(target: str) -> Control:
    return Control(target=target, state="resumed", set_by="ben", reason="fixed")


def task_on(running: Running, partitions: int) -> str:
    """A new task id whose requests go to a partition `running` decides now."""
    owned = running.service.request_partitions
    every = list(range(partitions))
    while True:
        task_id = f"task-{uuid.uuid4().hex[:10]}"
        if DefaultPartitioner()(task_id.encode(), every, every) in owned:
            return task_id


async def two_replicas(harness: PolicyHarness) -> tuple[Running, Running]:
    """Two replicas that have split the request partitions between them."""
    first = await harness.start_service()
    second = await harness.start_service()
    every = frozenset(range(harness.kafka.partitions))

    def split() -> bool:
        a, b = first.service.request_partitions, second.service.request_partitions
        return bool(a) and bool(b) and not a & b and a | b == every

    await wait_until(split, timeout=60, message="both replicas own request partitions")
    return first, second


async def decisions_on(
    authorizer: Authorizer, replicas: tuple[Running, ...], partitions: int, **call: Any
) -> list[Any]:
    """One model call decided by each replica, each for a new task."""
    return [
        await model_call(authorizer, task_on(running, partitions), **call) for running in replicas
    ]


async def test_a_paused_agent_is_denied_by_both_replicas_then_resumed(
    harness: PolicyHarness,
) -> None:
    replicas = await two_replicas(harness)
    authorizer = await harness.authorizer()
    partitions = harness.kafka.partitions
    before = await decisions_on(authorizer, replicas, partitions)
    assert [d.decision for d in before] == ["allow", "allow"]

    await write_control(harness.kafka, harness.names, pause("agent/researcher"))

    async def all_denied() -> list[Any] | None:
        decided = await decisions_on(authorizer, replicas, partitions)
        return decided if all(d.rule == "control" for d in decided) else None

    denied = await wait_until(all_denied, timeout=DEADLINE_S, message="both replicas deny")
    for decision in denied:
        assert decision.decision == "deny"
        assert decision.policy == "agent/researcher"
        assert "agent 'researcher' is paused by ana at " in decision.reason
        assert "incident 42" in decision.reason
    for running in replicas:
        assert running.service.controls.book.get("agent/researcher") is not None
    # another agent of the system is not paused
    writer = task_on(replicas[0], partitions)
    other = await model_call(authorizer, writer, agent="writer", model="mock-small")
    assert other.rule != "control"

    await write_control(harness.kafka, harness.names, resume("agent/researcher"))

    async def all_allowed() -> bool:
        decided = await decisions_on(authorizer, replicas, partitions)
        return all(d.decision == "allow" for d in decided)

    await wait_until(all_allowed, timeout=DEADLINE_S, message="both replicas allow again")


async def test_a_paused_tool_and_a_paused_system(harness: PolicyHarness) -> None:
    await harness.start_service()
    authorizer = await harness.authorizer()
    task = f"task-{uuid.uuid4().hex[:10]}"
    assert (await tool_call(authorizer, task, "web-search")).decision == "allow"

    await write_control(harness.kafka, harness.names, pause("tool/web-search"))

    async def tool_denied() -> Any:
        decision = await tool_call(authorizer, task, "web-search")
        return decision if decision.rule == "control" else None

    denied = await wait_until(tool_denied, timeout=DEADLINE_S)
    assert "tool 'web-search' is paused by ana" in denied.reason
    assert (await model_call(authorizer, task)).decision == "allow"  # models are not paused

    await write_control(harness.kafka, harness.names, pause("system/report"))

    async def model_denied() -> Any:
        decision = await model_call(authorizer, f"task-{uuid.uuid4().hex[:10]}")
        return decision if decision.rule == "control" else None

    denied = await wait_until(model_denied, timeout=DEADLINE_S)
    assert (denied.policy, denied.decision) == ("system/report", "deny")
    assert "system 'report' is paused by ana" in denied.reason


async def test_a_throttled_tool_admits_its_rate_per_replica(harness: PolicyHarness) -> None:
    await harness.start_service()
    authorizer = await harness.authorizer()
    task = f"task-{uuid.uuid4().hex[:10]}"
    throttle = Control(target="tool/web-search", state="throttled", per_minute=3, set_by="ana")
    # a pause first: once it is lifted by the throttle, the throttle is in force
    await write_control(harness.kafka, harness.names, pause("tool/web-search"))

    async def paused() -> bool:
        return (await tool_call(authorizer, task, "web-search")).rule == "control"

    await wait_until(paused, timeout=DEADLINE_S)
    await write_control(harness.kafka, harness.names, throttle)

    async def first_allowed() -> bool:
        return (await tool_call(authorizer, task, "web-search")).decision == "allow"

    await wait_until(first_allowed, timeout=DEADLINE_S, message="the throttle replaced the pause")
    # 3 per minute: one token went to the call above, two are left (about 0.05 refill per s)
    decided = [await tool_call(authorizer, task, "web-search") for _ in range(3)]
    assert [d.decision for d in decided] == ["allow", "allow", "deny"]
    assert decided[-1].rule == "control"
    assert "throttled to 3 calls per minute per policy replica by ana" in decided[-1].reason
    # another tool is not throttled
    assert (await tool_call(authorizer, task, "send-email")).decision == "allow"


async def _control_events(kafka: KafkaSettings, names: TopicNames, n: int) -> list[Event]:
    """The control events on the events topic, once there are `n` of them."""

    async def found() -> list[Event]:
        events: list[Event] = []

        def fold(record: Any) -> None:
            ev = decode(record.value, Event)
            if ev.type.startswith("control."):
                events.append(ev)

        await read_table(kafka, names.events, fold)
        return events if len(events) >= n else []

    events: list[Event] = await wait_until(found, timeout=60, interval=0.2)
    return events


async def test_each_control_is_recorded_once_as_an_event(harness: PolicyHarness) -> None:
    """Two replicas, one event per control (the replicas share the recorder's group)."""
    await two_replicas(harness)
    await write_control(harness.kafka, harness.names, pause("agent/researcher"))
    await write_control(harness.kafka, harness.names, resume("agent/researcher"))
    events = await _control_events(harness.kafka, harness.names, 2)
    assert [e.type for e in events] == ["control.paused", "control.resumed"]
    paused, resumed = (payload_of(e, ControlChangedData) for e in events)
    assert (paused.target, paused.set_by, paused.reason) == (
        "agent/researcher",
        "ana",
        "incident 42",
    )
    assert paused.set_at is not None
    assert (resumed.set_by, resumed.offset) == ("ben", 1)
    assert {e.task_id for e in events} == {"control:agent:researcher"}
    assert {(e.agent, e.source) for e in events} == {("researcher", "policy")}
    assert [e.event_id for e in events] == ["control:0:0", "control:0:1"]


@asynccontextmanager
async def ledger_running(
    kafka: KafkaSettings, database_url: str
) -> AsyncIterator[tuple[LedgerService, str]]:
    schema = f"s{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    settings = LedgerSettings(schema_name=schema, api_port=0, flush_interval_s=0.05)
    service = LedgerService(settings, DatabaseSettings(url=database_url), kafka, api=False)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        yield service, schema
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def test_the_ledger_records_who_paused_and_resumed(harness: PolicyHarness) -> None:
    await harness.start_service()
    async with ledger_running(harness.kafka, harness.database_url) as (_, schema):
        await write_control(harness.kafka, harness.names, pause("tool/wire-money"))
        await write_control(harness.kafka, harness.names, resume("tool/wire-money"))
        conn = await asyncpg.connect(harness.database_url)
        try:

            async def stored() -> list[asyncpg.Record]:
                rows: list[asyncpg.Record] = await conn.fetch(
                    f'SELECT type, data, seq FROM "{schema}".events'
                    " WHERE task_id = 'control:tool:wire-money' ORDER BY seq"
                )
                return rows if len(rows) == 2 else []

            rows = await wait_until(stored, timeout=60, message="the ledger stored both controls")
        finally:
            await conn.close()
    assert [r["type"] for r in rows] == ["control.paused", "control.resumed"]
    paused, resumed = (json.loads(r["data"]) for r in rows)
    assert (paused["set_by"], paused["reason"]) == ("ana", "incident 42")
    assert (resumed["set_by"], resumed["reason"]) == ("ben", "fixed")


async def test_as_their_own_principals_the_operator_pauses_and_the_policy_service_follows(
    harness: PolicyHarness,
) -> None:
    """The ACLs (`topics.acls`) are enough: the operator writes the control, the policy service
    as `podium-policy` reads it and records its event (tests/security: nobody else writes)."""
    state = load_state()
    if state.kafka is None or not state.kafka.sasl:
        pytest.fail("this test needs the local stack's SASL broker (`podium stack up`)")
    roles: list[Role] = ["operator", "policy"]
    await create_acls(
        harness.kafka,
        [
            b
            for role in roles
            for b in acl_bindings(role, harness.names, f"User:{credentials.kafka_username(role)}")
        ],
    )

    def as_role(role: Role) -> KafkaSettings:
        user = credentials.kafka_username(role)
        password = credentials.read_password(user)
        assert password is not None
        return harness.kafka.with_credentials(user, password)

    async def granted() -> bool:  # the broker applies new ACLs a moment later
        return bool(await partitions_of(as_role("policy"), harness.names.approvals))

    await wait_until(granted, timeout=30, interval=0.2)
    admin_kafka = harness.kafka
    harness.kafka = as_role("policy")
    try:
        await harness.start_service()
    finally:
        harness.kafka = admin_kafka
    authorizer = await harness.authorizer()
    await write_control(as_role("operator"), harness.names, pause("agent/researcher"))

    async def denied() -> bool:
        task = f"task-{uuid.uuid4().hex[:10]}"
        return (await model_call(authorizer, task)).rule == "control"

    await wait_until(denied, timeout=DEADLINE_S)
    [recorded] = await _control_events(harness.kafka, harness.names, 1)
    assert recorded.type == "control.paused"
