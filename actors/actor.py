"""`ActorService`: one agent role's consumer group, running each step exactly once.

Per step: decode (a bad message goes to the role's DLQ), count a join arrival (the join runs once,
when its last branch arrives), run the agent loop (with bounded retries of transient errors),
compute the step's transition (`actors.transition`), then return the `Outbox` that
`TransactionalProcessor` commits in ONE transaction with the input offset: the next steps, the
step's events, the task's result when it ends, the join changelog record.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid

from aiokafka import ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from actors.agent_loop import AgentLoop
from actors.joins import JoinStore
from actors.outbox import OutboxBuilder
from actors.poison import kept_for_letter
from actors.ports import CatalogSource, Gate, ToolBox
from actors.profile import AgentProfile, Profiles, ProviderFactory
from actors.providers import make_provider
from actors.records import Outbox, PartitionContext
from actors.results import Failed, LoopResult
from actors.routing import visits_of, waits_at_join
from actors.settings import ActorSettings
from actors.transactions import TransactionalProcessor
from actors.transition import failure, transition
from actors.usage_emitter import UsageEmitter
from manifests.catalog import Catalog
from podium.core import tracing
from podium.core.errors import TransientError
from podium.core.logs import log_context
from podium.core.retry import backoff_delay
from podium.core.settings import KafkaSettings
from topics.codec import MalformedMessage, decode
from topics.messages import EventType, PathUsage, Step, StepStartedData, event_id_of, utcnow
from topics.names import TopicNames
from topics.routing import RouteNode

log = logging.getLogger(__name__)

CATALOG_WAIT_S = 5.0
STEP_RETRY_MAX_DELAY_S = 60.0
"""The longest wait between two runs of a step (the task's deadline bounds it too)."""


class ActorService:
    """`podium actor AGENT`: serves the agent role until stopped."""

    def __init__(
        self,
        kafka: KafkaSettings,
        names: TopicNames,
        agent: str,
        *,
        settings: ActorSettings,
        catalog: CatalogSource,
        gate: Gate,
        tools: ToolBox,
        provider_factory: ProviderFactory | None = None,
        sealing_key: X25519PrivateKey | None = None,
        instance_id: str | None = None,
    ) -> None:
        self.name = f"actor:{agent}"
        self.agent = agent
        self._names = names
        self._settings = settings
        self._catalog = catalog
        self._profiles = Profiles(
            max_output_tokens=settings.max_output_tokens,
            provider_factory=provider_factory
            or functools.partial(
                make_provider,
                allowed_secret_env=settings.allowed_secret_env,
                sealing_key=sealing_key,
            ),
        )
        instance = instance_id or uuid.uuid4().hex[:8]
        self._usage = UsageEmitter(kafka, names, source=self.name)
        self._loop = AgentLoop(
            gate=gate,
            tools=tools,
            usage=self._usage,
            policy_timeout_s=settings.policy_timeout_s,
        )
        self._out = OutboxBuilder(names, source=self.name)
        self._joins = JoinStore()
        self.processor = TransactionalProcessor(
            kafka,
            topic=names.agent(agent),
            group=names.actor_group(agent),
            handler=self.handle,
            on_poison=self.poisoned,
            changelog_topic=names.agent_joins(agent),
            max_attempts=settings.max_attempts,
            retry_backoff_s=max(settings.step_retry_backoff_s, 0.1),
            max_record_bytes=settings.max_record_bytes,
            max_in_flight=settings.max_in_flight,
            grace_s=settings.grace_s,
            session_timeout_ms=settings.session_timeout_ms,
            client_id=f"{names.prefix}.actor.{agent}.{instance}",
        )

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await self._usage.start()
            await self.processor.run(stop)
        finally:
            await self._usage.stop()
            await self._profiles.aclose()

    # -- the handler (traced as middleware) -----------------------------------------------------

    async def handle(self, record: ConsumerRecord[bytes, bytes], ctx: PartitionContext) -> Outbox:
        dlq = self._names.agent_dlq(self.agent)
        try:
            step: Step = decode(record.value, Step)
        except MalformedMessage as exc:
            return self._out.dead_letter(record, dlq, exc.reason, agent=self.agent)
        if step.agent != self.agent:
            return self._out.dead_letter(
                record,
                dlq,
                f"step for agent {step.agent!r} arrived on the inbox of {self.agent!r}",
                agent=self.agent,
            )
        with log_context(task_id=step.task_id, step_id=step.step_id, agent=self.agent):
            return await self._traced_step(record, ctx, step)

    def poisoned(
        self, record: ConsumerRecord[bytes, bytes], ctx: PartitionContext, reason: str
    ) -> Outbox:
        """A step that cannot be processed (its output cannot be produced, or its handling keeps
        failing): the input to the DLQ, the step and its task failed with the reason."""
        dlq = self._names.agent_dlq(self.agent)
        error = f"{self.agent}: {reason}"
        kept, note = kept_for_letter(record, self.processor.limit)
        try:
            step: Step = decode(record.value, Step)
        except MalformedMessage:
            return self._out.dead_letter(kept, dlq, error + note, agent=self.agent)
        outbox = self._out.dead_letter(
            kept, dlq, error + note, agent=self.agent, task_id=step.task_id, system=step.system
        )
        if step.abandoned is None:
            # The path's usage before this step; its own calls were reported as they happened.
            after = failure(step, error, step.usage)
            self._out.apply(outbox, step, after, dlq=dlq, letter=False)
        return outbox

    @tracing.traced_handler(
        name=lambda self, record, ctx, step: f"step {step.agent}",
        headers_of=lambda self, record, ctx, step: record.headers,
        attributes=lambda self, record, ctx, step: {
            "podium.task_id": step.task_id,
            "podium.system": step.system,
            "podium.agent": step.agent,
            "podium.step_id": step.step_id,
            "messaging.kafka.partition": record.partition,
            "messaging.kafka.offset": record.offset,
        },
    )
    async def _traced_step(
        self, record: ConsumerRecord[bytes, bytes], ctx: PartitionContext, step: Step
    ) -> Outbox:
        dlq = self._names.agent_dlq(self.agent)
        catalog = await self._catalog_with(step.system)
        table = catalog.routing.get(step.system)
        outbox = Outbox()
        if step.abandoned is not None:
            self._abandoned(ctx, outbox, table.nodes.get(self.agent) if table else None, step)
            return outbox
        if table is None or self.agent not in catalog.agents:
            missing = (
                f"system {step.system!r} is not applied"
                if table is None
                else f"agent {self.agent!r} is not applied"
            )
            self._out.apply(outbox, step, failure(step, missing, step.usage), dlq=dlq)
            return outbox
        node = table.nodes.get(self.agent)
        if node is not None and waits_at_join(node, step) and step.resume is None:
            merged = self._joins.arrive(ctx.state, outbox.state, node, step)
            if merged is None:
                log.info("join %s: branch arrived, waiting for the others", self.agent)
                return outbox
            step = merged
        # At call time, so the audit trail shows it before the step's calls; its id is
        # deterministic, so a re-run of the step is deduplicated by the ledger.
        await self._usage.emit(
            step,
            StepStartedData(upstream=[u.step_id for u in step.upstream], iteration=visits_of(step)),
            agent=self.agent,
            event_id=event_id_of(step.task_id, step.step_id, EventType.STEP_STARTED),
        )
        profile = self._profiles.of(catalog, self.agent, node)
        spent: list[PathUsage] = []
        result = await self._run_with_retries(profile, step, spent)
        usage = step.usage + sum(spent, PathUsage())
        after = transition(step, result, node=node, table=table, usage=usage, now=utcnow())
        self._out.apply(outbox, step, after, dlq=dlq)
        return outbox

    def _abandoned(
        self, ctx: PartitionContext, outbox: Outbox, node: RouteNode | None, step: Step
    ) -> None:
        """A notice that a branch of a join failed: count it, so the join's state is cleared."""
        if node is None or node.join is None:
            log.warning("a failed-branch notice reached %s, which joins nothing", self.agent)
            return
        merged = self._joins.arrive(ctx.state, outbox.state, node, step)
        assert merged is None  # a failed branch never completes a join

    async def _catalog_with(self, system: str) -> Catalog:
        """The catalog, waiting briefly when it does not know the system yet (still loading)."""
        deadline = time.monotonic() + CATALOG_WAIT_S
        catalog = self._catalog.catalog
        while (
            system not in catalog.routing or self.agent not in catalog.agents
        ) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            catalog = self._catalog.catalog
        return catalog

    async def _run_with_retries(
        self, profile: AgentProfile, step: Step, spent: list[PathUsage]
    ) -> LoopResult:
        attempts = self._settings.step_retry_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await self._loop.run(profile, step, spent)
            except TransientError as exc:
                deadline_left = (
                    step.deadline.timestamp() - time.time() if step.deadline else float("inf")
                )
                delay = backoff_delay(
                    attempt,
                    base_delay_s=self._settings.step_retry_backoff_s,
                    max_delay_s=STEP_RETRY_MAX_DELAY_S,
                )
                if attempt == attempts or delay >= deadline_left:
                    return Failed(
                        error=f"{self.agent}: transient errors exhausted after {attempt} "
                        f"attempt(s): {exc}",
                        model_calls=step.model_calls.get(self.agent, 0),
                    )
                log.warning("step attempt %d failed (%s); retrying in %.2f s", attempt, exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")
