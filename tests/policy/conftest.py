"""Fixtures of the policy tests: a real policy service (in this process) and Authorizers."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from podium import composition
from podium.core.settings import DatabaseSettings, KafkaSettings
from policy_service.client import Authorizer
from policy_service.rules import RuleSet
from policy_service.rules_source import StaticRules
from policy_service.service import PolicyService
from policy_service.settings import PolicySettings
from tests.policy.manifests_fixture import pricer, rule_set
from topics.kafka import ensure_topics
from topics.names import TopicNames

KEY = b"test-policy-key-0123456789abcdef"


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
            settings or PolicySettings(hmac_key=KEY.decode()),
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

    async def authorizer(self, timeout_s: float = 10.0, key: bytes = KEY) -> Authorizer:
        authorizer = Authorizer(
            self.kafka,
            self.names,
            instance_id=f"test-{uuid.uuid4().hex[:8]}",
            hmac_key=key,
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
