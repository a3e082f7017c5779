"""Each agent's actors as a Kafka principal of their own (`topics.acls.agent_actor_bindings`):
the pipeline runs with every actor confined to its agent, and one agent's principal is refused
another agent's inbox, group, transactional ids and replies."""

from __future__ import annotations

import secrets
import uuid

import pytest
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from podium import composition
from podium.core.settings import KafkaSettings
from policy_service.settings import PolicySettings
from tests.actors.conftest import FAST_ACTOR, RESEARCH_FILES, SIGNING_KEY, VERIFY_KEYS, Runtime
from tests.helpers import APPROVER_PUBLIC
from topics.acl_admin import create_acls
from topics.acls import agent_actor_bindings
from topics.kafka import ensure_topics, make_consumer, make_producer
from topics.messages import TaskCompleted
from topics.names import TopicNames
from topics.scram_admin import upsert_scram_users

pytestmark = pytest.mark.integration

AGENTS = ("researcher", "analyst", "writer")


async def _principals(
    admin: KafkaSettings, names: TopicNames, agents: tuple[str, ...]
) -> dict[str, KafkaSettings]:
    """A SCRAM user per agent (unique to the test) with that agent's ACLs on the test prefix."""
    run = uuid.uuid4().hex[:6]
    passwords = {f"t{run}-{agent}": secrets.token_hex(16) for agent in agents}
    await upsert_scram_users(admin, passwords)
    users = dict(zip(agents, passwords, strict=True))
    await create_acls(
        admin,
        [b for a in agents for b in agent_actor_bindings(a, names, f"User:{users[a]}")],
    )
    return {a: admin.with_credentials(users[a], passwords[users[a]]) for a in agents}


async def test_the_pipeline_runs_with_each_actor_as_its_own_agents_principal(
    runtime: Runtime,
) -> None:
    await runtime.start(RESEARCH_FILES, actors=False)
    principals = await _principals(runtime.kafka, runtime.names, AGENTS)
    policy = PolicySettings(
        signing_key=SIGNING_KEY, verify_keys=VERIFY_KEYS, approver_keys=APPROVER_PUBLIC
    )
    for agent in AGENTS:
        role = composition.ActorRole(principals[agent], [agent], FAST_ACTOR, policy)
        runtime.spawn(role.run(runtime.stop), role.name)

    task_id = await runtime.submit("research-pipeline", "AI agent governance in enterprise")
    result = await runtime.result(task_id, timeout=120)
    assert isinstance(result, TaskCompleted), result
    completed = [e.agent for e in runtime.collector.events[task_id] if e.type == "step.completed"]
    assert completed == list(AGENTS)


async def test_an_agents_principal_is_refused_everything_of_another_agent(
    kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    # `writer` and `writer-2`: one agent's name is the head of the other's
    names = topic_names
    principals = await _principals(kafka_settings, names, ("writer", "writer-2"))
    writer = principals["writer"]
    theirs = names.replies(names.actor_instance("writer-2", "1a2b3c4d"))
    await ensure_topics(kafka_settings, [names.agent("writer"), names.agent("writer-2"), theirs])

    # allowed: its own inbox and group, and routing a step to the other agent's inbox
    own = make_consumer(writer, names.agent("writer"), group_id=names.actor_group("writer"))
    try:
        await own.start()
        await own.getmany(timeout_ms=1000)
    finally:
        await own.stop()
    producer = make_producer(writer)
    try:
        await producer.start()
        await producer.send_and_wait(names.agent("writer-2"), b"{}", key=b"k")
    finally:
        await producer.stop()

    for topic, group, error in [
        (names.agent("writer-2"), names.actor_group("writer"), TopicAuthorizationFailedError),
        (names.agent("writer"), names.actor_group("writer-2"), GroupAuthorizationFailedError),
    ]:
        consumer = make_consumer(writer, topic, group_id=group)
        try:
            with pytest.raises(error):
                await consumer.start()
                await consumer.getmany(timeout_ms=5000)
        finally:
            await consumer.stop()

    txn = f"{names.actor_group('writer-2')}.{names.agent('writer-2')}.0"
    fenced = make_producer(writer, transactional_id=txn)
    with pytest.raises(TransactionalIdAuthorizationFailed):
        await fenced.start()
    await fenced.stop()

    replies = make_consumer(writer, theirs, group_id=None)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await replies.start()
            await replies.getmany(timeout_ms=5000)
    finally:
        await replies.stop()
