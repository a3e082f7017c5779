"""What the ledger API is given by the rest of the system: the decider of approvals (signed with
an approver key, onto Kafka), the submitter of tasks (onto the tasks topic, for applied systems)
and the TaskWebhooks it serves (from the catalog, their Secrets opened with the ledger's sealing
key). Part of the composition root (`podium.composition`)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.api import ApprovalDecided, ApprovalUnknown, Decider
from ledger.submit import SubmitterUnavailable, SystemUnknown
from ledger.webhooks import WebhookTarget, catalog_target
from manifests.catalog import Catalog
from manifests.watcher import CatalogWatcher
from podium import environment
from podium.core import tracing
from podium.core.settings import ConfigurationError, KafkaSettings
from policy_service.approval_signing import signer_trusted
from policy_service.approvals import ApprovalAlreadyDecided, ApprovalNotFound, decide_approval
from policy_service.keys import SigningKey, VerifyKeys
from policy_service.settings import (
    APPROVER_KEYS_ENV,
    resolve_approver_signing_key,
    resolve_decision_keys,
)
from topics.codec import encode, headers_for
from topics.kafka import make_producer
from topics.messages import ApprovalDecision, TaskRequested
from topics.names import TopicNames

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Approver:
    """What a decider of approvals holds: its signing key, and the keys whose decisions count
    (to read the approvals book as the policy service reads it)."""

    signer: SigningKey
    trusted: VerifyKeys

    async def decide(
        self,
        kafka: KafkaSettings,
        names: TopicNames,
        approval_id: str,
        *,
        granted: bool,
        decided_by: str,
        reason: str,
    ) -> ApprovalDecision:
        """`decide_approval`, signed with this approver's key."""
        return await decide_approval(
            kafka,
            names,
            approval_id,
            signer=self.signer,
            trusted=self.trusted,
            granted=granted,
            decided_by=decided_by,
            reason=reason,
        )


def decision_keys(kafka: KafkaSettings) -> VerifyKeys:
    """The keys whose approval decisions count: the approvers' and the policy service's."""
    dev = environment.on_dev_stack(kafka)
    return resolve_decision_keys(environment.policy_settings(), dev_stack=dev)


def approver(kafka: KafkaSettings) -> Approver:
    """The approver key of this process (`PODIUM_APPROVER_SIGNING_KEY`, or the dev stack's)."""
    dev = environment.on_dev_stack(kafka)
    signer = resolve_approver_signing_key(environment.approver_settings(), dev_stack=dev)
    return Approver(signer=signer, trusted=decision_keys(kafka))


def kafka_decider(kafka: KafkaSettings, names: TopicNames, approver: Approver) -> Decider:
    """Approval decisions of the ledger API go onto Kafka, signed with the ledger's approver
    key."""

    async def decide(approval_id: str, *, granted: bool, decided_by: str, reason: str) -> None:
        try:
            await approver.decide(
                kafka, names, approval_id, granted=granted, decided_by=decided_by, reason=reason
            )
        except ApprovalNotFound as exc:
            raise ApprovalUnknown(str(exc)) from None
        except ApprovalAlreadyDecided as exc:
            raise ApprovalDecided(str(exc)) from None

    return decide


class KafkaSubmitter:
    """Tasks of the ledger API go to the tasks topic, for systems the catalog has applied; the
    catalog watcher and the producer start at the first submission."""

    def __init__(self, kafka: KafkaSettings, names: TopicNames) -> None:
        self._kafka = kafka
        self._names = names
        self._lock = asyncio.Lock()
        self._watcher: CatalogWatcher | None = None
        self._producer: AIOKafkaProducer | None = None

    async def _started(self) -> tuple[CatalogWatcher, AIOKafkaProducer]:
        async with self._lock:
            if self._watcher is None:
                watcher = CatalogWatcher(self._kafka, self._names, service="ledger")
                await watcher.start()
                self._watcher = watcher
            if self._producer is None:
                producer = make_producer(self._kafka)
                await producer.start()
                self._producer = producer
            return self._watcher, self._producer

    async def catalog(self) -> Catalog:
        """The applied catalog (the watcher starts at the first call)."""
        from aiokafka.errors import KafkaError

        try:
            watcher, _ = await self._started()
        except (KafkaError, OSError) as exc:
            raise SubmitterUnavailable(f"Kafka cannot be read now: {exc!r}") from exc
        return watcher.catalog

    async def submit(self, task: TaskRequested) -> None:
        from aiokafka.errors import KafkaError

        try:
            watcher, producer = await self._started()
            if task.system not in watcher.catalog.systems:
                raise SystemUnknown(
                    f"system {task.system!r} is not applied (apply it with `podium apply`)"
                )
            await producer.send_and_wait(
                self._names.tasks,
                key=task.task_id.encode(),
                value=encode(task),
                headers=headers_for(task, tracing.trace_headers()),
            )
        except (KafkaError, OSError) as exc:
            raise SubmitterUnavailable(f"Kafka cannot take the task now: {exc!r}") from exc

    async def aclose(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None
            if self._watcher is not None:
                await self._watcher.stop()
                self._watcher = None


class CatalogWebhooks:
    """The ledger's TaskWebhooks: the submitter's catalog, their Secrets opened with the
    ledger's sealing key."""

    def __init__(self, submitter: KafkaSubmitter, sealing_key: X25519PrivateKey | None) -> None:
        self._submitter = submitter
        self._sealing_key = sealing_key

    async def target(self, name: str) -> WebhookTarget:
        return catalog_target(await self._submitter.catalog(), name, self._sealing_key)


def ledger_decider(kafka: KafkaSettings) -> Decider | None:
    """The ledger API's decider, when this process has an approver key the policy service
    trusts (else the API answers 503 to decisions, and this log says which setting is wrong)."""
    try:
        held = approver(kafka)
    except ConfigurationError as exc:
        log.warning("the ledger API will decide no approvals: %s", exc)
        return None
    if not signer_trusted(held.signer, held.trusted):
        log.warning(
            "the ledger API will decide no approvals: its approver key %r is not among %s",
            held.signer.key_id,
            APPROVER_KEYS_ENV,
        )
        return None
    return kafka_decider(kafka, environment.topic_names(kafka), held)
