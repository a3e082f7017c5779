"""The broker refuses clients without the right credentials, and each role's principal outside
its ACLs (`topics.acls`): the local stack's Kafka runs SASL/SCRAM-SHA-512 and the standard
authorizer, with nothing allowed that no ACL grants."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from manifests.watcher import CatalogWatcher
from podium.core.settings import KafkaSettings
from podium.stack import credentials, load_state
from tests.conftest import StackEndpoints
from tests.helpers import consume_until
from topics.acl_admin import create_acls
from topics.acls import ROLES, Role, acl_bindings
from topics.codec import decode
from topics.kafka import TopicsRefused, ensure_topics, make_consumer, make_producer
from topics.messages import DeadLetter
from topics.names import TopicNames

pytestmark = pytest.mark.integration

AsRole = Callable[[Role], KafkaSettings]


@pytest.fixture
async def as_role(kafka_settings: KafkaSettings, topic_names: TopicNames) -> AsRole:
    """Every role's ACLs for the test's prefix (as the stack applies them for `podium`), its
    core topics, and a function giving the role's own principal on that prefix."""
    state = load_state()
    if state.kafka is None or not state.kafka.sasl:
        pytest.fail("these tests need the local stack's SASL broker (`podium stack up`)")
    bindings = [
        b
        for role in ROLES
        for b in acl_bindings(role, topic_names, f"User:{credentials.kafka_username(role)}")
    ]
    await create_acls(kafka_settings, bindings)
    await ensure_topics(
        kafka_settings,
        [
            *topic_names.core_topics(),
            topic_names.manifests,
            topic_names.ledger_anchors,
            topic_names.events_dlq,
            topic_names.agent("writer"),
            topic_names.replies("actor-1a2b3c4d"),
            topic_names.controls,
        ],
    )

    def settings(role: Role) -> KafkaSettings:
        user = credentials.kafka_username(role)
        password = credentials.read_password(user)
        assert password is not None
        return kafka_settings.with_credentials(user, password)

    return settings


async def _produce(kafka: KafkaSettings, topic: str) -> None:
    producer = make_producer(kafka)
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"{}", key=b"k")
    finally:
        await producer.stop()


async def _refused(call: Awaitable[None], error: type[Exception]) -> None:
    with pytest.raises(error):
        await call


async def test_a_client_without_credentials_is_refused(stack: StackEndpoints) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()


async def test_a_wrong_password_is_refused(kafka_settings: KafkaSettings) -> None:
    wrong = kafka_settings.with_credentials(credentials.kafka_username("submitter"), "not-it")
    with pytest.raises(KafkaConnectionError):
        await _produce(wrong, "anything")
    unknown = kafka_settings.with_credentials("nobody-at-all", "x")
    with pytest.raises(KafkaConnectionError):
        await _produce(unknown, "anything")


async def test_each_role_produces_where_its_acls_allow(
    as_role: AsRole, topic_names: TopicNames
) -> None:
    """The positive control of the refusals below: the same clients, allowed topics."""
    await _produce(as_role("submitter"), topic_names.tasks)
    await _produce(as_role("actor"), topic_names.policy_requests)
    await _produce(as_role("actor"), topic_names.agent("writer"))
    await _produce(as_role("operator"), topic_names.manifests)
    await _produce(as_role("operator"), topic_names.controls)  # podium pause|resume|throttle
    await _produce(as_role("ledger"), topic_names.events_dlq)
    await _produce(as_role("ledger"), topic_names.tasks)  # POST /v1/tasks


FORBIDDEN_WRITES: list[tuple[Role, str]] = [
    ("actor", "manifests"),
    ("actor", "replies"),
    ("actor", "policy_requests_dlq"),
    ("actor", "tasks"),
    ("submitter", "events"),
    ("submitter", "agent"),
    ("submitter", "manifests"),
    ("submitter", "approvals"),
    ("submitter", "results"),
    ("ledger", "manifests"),
    ("ledger", "policy_requests"),
    ("dispatcher", "manifests"),
    ("dispatcher", "approvals"),
    ("scheduler", "agent"),
    ("scheduler", "manifests"),
    ("policy", "manifests"),
    ("policy", "tasks"),
    ("operator", "replies"),
    ("operator", "events"),  # the policy service records the controls
    ("actor", "controls"),
    ("policy", "controls"),
    ("ledger", "controls"),
    ("submitter", "controls"),
]


def _topic(names: TopicNames, what: str) -> str:
    if what == "agent":
        return names.agent("writer")
    if what == "replies":
        return names.replies("actor-1a2b3c4d")
    return str(getattr(names, what))


@pytest.mark.parametrize(("role", "what"), FORBIDDEN_WRITES)
async def test_a_role_cannot_produce_outside_its_acls(
    as_role: AsRole, topic_names: TopicNames, role: Role, what: str
) -> None:
    await _refused(
        _produce(as_role(role), _topic(topic_names, what)), TopicAuthorizationFailedError
    )


async def test_a_role_cannot_join_another_roles_group(
    as_role: AsRole, topic_names: TopicNames
) -> None:
    for role, group, topic in [
        ("submitter", topic_names.actor_group("writer"), topic_names.results),
        ("ledger", topic_names.policy_group, topic_names.events),
        ("actor", topic_names.ledger_group, topic_names.agent("writer")),
    ]:
        consumer = make_consumer(as_role(role), topic, group_id=group)
        with pytest.raises(GroupAuthorizationFailedError):
            await consumer.start()
        await consumer.stop()


async def test_a_role_cannot_take_another_roles_transactional_id(
    as_role: AsRole, topic_names: TopicNames
) -> None:
    p = topic_names.prefix
    for role, transactional_id in [
        ("actor", f"{topic_names.manifests}.apply"),
        ("actor", f"{topic_names.approvals}.decide.a1"),
        ("submitter", f"{p}.actor.writer.{p}.agent.writer.0"),
        ("ledger", f"{p}.dispatcher.{p}.tasks.0"),
        ("dispatcher", f"{p}.scheduler.0"),
    ]:
        producer = make_producer(as_role(role), transactional_id=transactional_id)
        with pytest.raises(TransactionalIdAuthorizationFailed):
            await producer.start()
        await producer.stop()


async def test_the_submitter_cannot_read_the_events(
    as_role: AsRole, topic_names: TopicNames
) -> None:
    consumer = make_consumer(
        as_role("submitter"), topic_names.events, group_id=f"{topic_names.prefix}.submitter.x"
    )
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await consumer.start()
            await consumer.getmany(timeout_ms=5000)
    finally:
        await consumer.stop()


async def test_every_catalog_reader_dead_letters_the_records_it_skips(
    as_role: AsRole, kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    """Each service's watcher, as its own principal, creates `<p>.manifests.dlq` if needed and
    writes the dead letter of a record it skipped."""
    await _produce(as_role("operator"), topic_names.manifests)  # `{}`: not a ManifestRecord
    readers: list[Role] = ["dispatcher", "actor", "policy", "ledger", "scheduler"]
    for role in readers:
        watcher = CatalogWatcher(as_role(role), topic_names, service=role)
        try:
            await watcher.start()
        finally:
            await watcher.stop()
    letters = await consume_until(kafka_settings, topic_names.manifests_dlq, len(readers))
    found = [decode(r.value, DeadLetter) for r in letters]
    assert sorted(d.service for d in found) == sorted(readers)
    assert {(d.topic, d.offset, d.key) for d in found} == {(topic_names.manifests, 0, b"k")}


async def test_a_prefix_without_acls_is_a_clear_refusal(as_role: AsRole) -> None:
    """`podium apply` on a prefix the operator holds no ACLs for says so (it raised a bare
    "error code 29")."""
    operator = as_role("operator")
    elsewhere = operator.model_copy(update={"topic_prefix": "no-acls-here"})
    with pytest.raises(
        TopicsRefused, match="may not create topics under the prefix 'no-acls-here'"
    ):
        await ensure_topics(elsewhere, [TopicNames("no-acls-here").manifests])
