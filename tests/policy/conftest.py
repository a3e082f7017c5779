"""Fixtures of the policy tests: a real policy service (in this process) and Authorizers."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from podium import composition
from podium.core.settings import DatabaseSettings, KafkaSettings
from policy_service.client import Authorizer
from policy_service.keys import VerifyKey, parse_signing_key, parse_verify_keys
from policy_service.rules import RuleSet
from policy_service.rules_source import StaticRules
from policy_service.service import PolicyService
from policy_service.settings import PolicySettings
from tests.helpers import APPROVER_PUBLIC, key_pair
from tests.policy.manifests_fixture import pricer, rule_set
from topics.kafka import ensure_topics
from topics.names import TopicNames

SIGNING_KEY, VERIFY_KEYS = key_pair("test-policy")
"""The service's key pair in these tests, as the settings' texts."""
SIGNER = parse_signing_key(SIGNING_KEY)
PUBLIC_KEYS = parse_verify_keys(VERIFY_KEYS)


def policy_settings(**fields: Any) -> PolicySettings:
    """The policy settings of these tests: their key pair, and `fields`."""
    return PolicySettings(
        signing_key=SIGNING_KEY, verify_keys=VERIFY_KEYS, approver_keys=APPROVER_PUBLIC, **fields
    )


@dataclass
class Running:
    service: PolicyService
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


@dataclass
class PolicyHarness:
    kafka: KafkaSettings
    names: TopicNames
    database_url: str
    schema: str
    running: list[Running]
    authorizers: list[Authorizer]

    async def start_service(
        self, rules: RuleSet | None = None, settings: PolicySettings | None = None
    ) -> Running:
        service = composition.policy_service(
            self.kafka,
            settings or policy_settings(),
            DatabaseSettings(url=self.database_url),
            rules=StaticRules(rules or rule_set()),
            pricer=pricer,
            db_schema=self.schema,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        running = Running(service, stop, task)
        self.running.append(running)
        ready = asyncio.create_task(service.ready.wait())
        await asyncio.wait([ready, task], timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        assert service.ready.is_set(), "the policy service did not become ready"
        return running

    async def authorizer(
        self, timeout_s: float = 10.0, keys: dict[str, VerifyKey] | None = None
    ) -> Authorizer:
        authorizer = Authorizer(
            self.kafka,
            self.names,
            instance_id=f"test-{uuid.uuid4().hex[:8]}",
            verify_keys=keys or PUBLIC_KEYS,
            timeout_s=timeout_s,
        )
        await authorizer.start()
        self.authorizers.append(authorizer)
        return authorizer


@pytest.fixture
async def harness(
    kafka_settings: KafkaSettings, topic_names: TopicNames, database_url: str, pg_schema: str
) -> AsyncIterator[PolicyHarness]:
    await ensure_topics(kafka_settings, topic_names.core_topics())
    h = PolicyHarness(kafka_settings, topic_names, database_url, pg_schema, [], [])
    try:
        yield h
    finally:
        for authorizer in h.authorizers:
            await authorizer.stop()
        for running in h.running:
            if not running.task.done():
                with contextlib.suppress(Exception):
                    await running.shutdown()


StartService = Callable[..., Awaitable[Running]]
