"""The Kafka client factory: every producer, consumer and admin client is made here.

One place knows the bootstrap servers and the SASL/TLS settings of a production cluster, so no
service builds a client by hand.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, TopicAuthorizationFailedError
from aiokafka.helpers import create_ssl_context

from podium.core.errors import PermanentError
from podium.core.settings import KafkaSettings

log = logging.getLogger(__name__)


class TopicsRefused(PermanentError):
    """The broker's ACLs do not let this principal create the topics it needs."""


MAX_MESSAGE_BYTES = 8 * 1024 * 1024
"""Producers accept messages up to this size; topics are created to match, so that a large but
legitimate payload reaches the consumer, which decides what to do with it."""


def connection_options(settings: KafkaSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        context: ssl.SSLContext = create_ssl_context(
            cafile=settings.ssl_cafile,
            certfile=settings.ssl_certfile,
            keyfile=settings.ssl_keyfile,
        )
        options["ssl_context"] = context
    if settings.sasl_mechanism:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password
    return options


def make_producer(
    settings: KafkaSettings, *, transactional_id: str | None = None, **overrides: Any
) -> AIOKafkaProducer:
    """An idempotent producer (acks=all); transactional when given a `transactional_id`."""
    options: dict[str, Any] = {
        **connection_options(settings),
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 0,
        "max_request_size": MAX_MESSAGE_BYTES,
        "transactional_id": transactional_id,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def make_consumer(
    settings: KafkaSettings,
    *topics: str,
    group_id: str | None,
    **overrides: Any,
) -> AIOKafkaConsumer:
    """A consumer that reads committed messages only and never commits on its own."""
    options: dict[str, Any] = {
        **connection_options(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "isolation_level": "read_committed",
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": MAX_MESSAGE_BYTES,
        "fetch_max_bytes": 4 * MAX_MESSAGE_BYTES,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def make_admin(settings: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**connection_options(settings))


async def ensure_topics(
    settings: KafkaSettings,
    topics: Iterable[str],
    *,
    compacted: Iterable[str] = (),
    partitions: int | None = None,
) -> list[str]:
    """Create the topics that do not exist yet; return the names that were created."""
    wanted = sorted(set(topics))
    compacted_set = set(compacted)
    admin = make_admin(settings)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return []
        new = [
            NewTopic(
                name=name,
                num_partitions=partitions or settings.partitions,
                replication_factor=settings.replication_factor,
                topic_configs={
                    "max.message.bytes": str(MAX_MESSAGE_BYTES),
                    **({"cleanup.policy": "compact"} if name in compacted_set else {}),
                },
            )
            for name in missing
        ]
        response = await admin.create_topics(new)
        created = []
        for topic_error in getattr(response, "topic_errors", ()):
            name, code = topic_error[0], topic_error[1]
            if code == 0:
                created.append(name)
            elif code == TopicAuthorizationFailedError.errno:
                raise TopicsRefused(
                    f"Kafka refused to create topic {name}: principal "
                    f"{settings.sasl_username or '(anonymous)'} may not create topics under "
                    f"the prefix {settings.topic_prefix!r} (PODIUM_KAFKA_TOPIC_PREFIX); the "
                    "ACLs are granted per prefix (on the dev stack, `podium stack up` with the "
                    "prefix set grants it)"
                )
            elif code != TopicAlreadyExistsError.errno:
                raise RuntimeError(f"could not create topic {name}: error code {code}")
        await _wait_for_leaders(admin, missing)
        log.info("created topics %s", ", ".join(created))
        return created
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """A new topic accepts writes once its partitions have leaders; poll with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        described = await admin.describe_topics(names)
        ready = all(
            topic.get("error_code", 0) == 0
            and topic.get("partitions")
            and all(p.get("leader", -1) >= 0 for p in topic["partitions"])
            for topic in described
        )
        if ready:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"topics {names} have no partition leaders after 30 s")
        await asyncio.sleep(0.1)
