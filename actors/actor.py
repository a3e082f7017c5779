"""`ActorService`: one agent role's consumer group, running each step exactly once.

Per step: decode (a bad message goes to the role's DLQ), count a join arrival (the join runs once,
when its last branch arrives), run the agent loop (with bounded retries of transient errors), then
return the `Outbox` that `TransactionalProcessor` commits in ONE transaction with the input offset:
the next steps, the step's events, the task's result when it ends, the join changelog record.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol

import msgspec
from aiokafka import AIOKafkaProducer, ConsumerRecord

from actors.agent_loop import (
    AgentLoop,
    AgentProfile,
    AwaitingApproval,
    Delegated,
    Failed,
    Finished,
    Gate,
    LoopResult,
    ModelChoice,
    ToolBox,
    UsageTally,
)
from actors.delegation import return_step, worker_step
from actors.joins import JoinStore, abandoned_notices
from actors.outbox import OutboxBuilder
from actors.providers import make_provider
from actors.providers.base import ModelProvider, ToolSpec
from actors.routing import allowed_outcome, choose_edges, next_steps, visits_of
from actors.settings import ActorSettings
from actors.tools.base import ToolInvocation, ToolResult
from actors.tools.registry import ToolRegistry
from actors.transactions import Outbox, PartitionContext, TransactionalProcessor
from manifests.catalog import Catalog
from manifests.models import ModelEndpoint
from podium.core import tracing
from podium.core.errors import TransientError
from podium.core.logs import log_context
from podium.core.retry import backoff_delay
from podium.core.settings import KafkaSettings
from topics.codec import MalformedMessage, decode, encode, headers_for
from topics.kafka import make_producer
from topics.messages import (
    Action,
    ApprovalRequest,
    ApprovalRequestedData,
    AuthorizationRequest,
    EventType,
    PathUsage,
    Payload,
    Step,
    StepOutput,
    StepStartedData,
    event,
    utcnow,
)
from topics.names import TopicNames
from topics.routing import RouteNode

log = logging.getLogger(__name__)

DEFAULT_APPROVAL_TTL_S = 3600.0
"""Expiry of an approval whose decision does not say (a policy service that predates
`Decision.approval_expires_at`)."""
CATALOG_WAIT_S = 5.0
STEP_RETRY_MAX_DELAY_S = 60.0
"""The longest wait between two runs of a step (the task's deadline bounds it too)."""


class CatalogSource(Protocol):
    """Where the current catalog comes from (`manifests.watcher.CatalogWatcher`)."""

    @property
    def catalog(self) -> Catalog: ...


class CatalogTools:
    """The tool registry of the current catalog, rebuilt when the catalog object changes."""

    def __init__(self, source: CatalogSource) -> None:
        self._source = source
        self._catalog: Catalog | None = None
        self._registry: ToolRegistry | None = None

    def _current(self) -> ToolRegistry:
        catalog = self._source.catalog
        if self._registry is None or catalog is not self._catalog:
            self._catalog = catalog
            self._registry = ToolRegistry.from_catalog(catalog)
        return self._registry

    def spec_for(self, name: str) -> ToolSpec:
        return self._current().spec_for(name)

    async def invoke(self, invocation: ToolInvocation) -> ToolResult:
        return await self._current().invoke(invocation)


class UsageEmitter:
    """Produces call-time usage events with an idempotent, non-transactional producer."""

    def __init__(self, kafka: KafkaSettings, names: TopicNames, *, source: str) -> None:
        self._producer: AIOKafkaProducer = make_producer(kafka)
        self._names = names
        self._source = source

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def emit(
        self, step: Step, payload: Payload, *, agent: str, event_id: str | None = None
    ) -> None:
        trace_id, span_id = tracing.current_ids()
        ev = event(
            payload,
            event_id=event_id or uuid.uuid4().hex,
            task_id=step.task_id,
            system=step.system,
            agent=agent,
            step_id=step.step_id,
            attempt=step.attempt,
            trace_id=trace_id,
            span_id=span_id,
            source=self._source,
        )
        await self._producer.send_and_wait(
            self._names.events,
            key=step.task_id.encode(),
            value=encode(ev),
            headers=headers_for(ev, tracing.trace_headers()),
        )


def system_prompt(agent: str, prompt: str, description: str) -> str:
    if prompt.strip():
        return prompt
    what = description.strip() or "Do your part of the task."
    return (
        f"You are {agent}, one agent of a multi-agent system. {what} Answer with your result only."
    )


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
        provider_factory: Callable[[ModelEndpoint], ModelProvider] = make_provider,
        instance_id: str | None = None,
    ) -> None:
        self.name = f"actor:{agent}"
        self.agent = agent
        self._kafka = kafka
        self._names = names
        self._settings = settings
        self._catalog = catalog
        self._provider_factory = provider_factory
        self._providers: dict[tuple[str, str], ModelProvider] = {}
        self._instance = instance_id or uuid.uuid4().hex[:8]
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
            changelog_topic=names.agent_joins(agent),
            concurrency=settings.concurrency,
            grace_s=settings.grace_s,
            session_timeout_ms=settings.session_timeout_ms,
            client_id=f"{names.prefix}.actor.{agent}.{self._instance}",
        )

    async def run(self, stop: asyncio.Event) -> None:
        await self._usage.start()
        try:
            await self.processor.run(stop)
        finally:
            await self._usage.stop()
            for provider in self._providers.values():
                await provider.aclose()

    # -- the handler (traced as middleware) -----------------------------------------------------

    async def handle(self, record: ConsumerRecord[bytes, bytes], ctx: PartitionContext) -> Outbox:
        try:
            step: Step = decode(record.value, Step)
        except MalformedMessage as exc:
            return self._out.dead_letter(
                record, self._names.agent_dlq(self.agent), exc.reason, agent=self.agent
            )
        if step.agent != self.agent:
            return self._out.dead_letter(
                record,
                self._names.agent_dlq(self.agent),
                f"step for agent {step.agent!r} arrived on the inbox of {self.agent!r}",
                agent=self.agent,
            )
        with log_context(task_id=step.task_id, step_id=step.step_id, agent=self.agent):
            return await self._traced_step(record, ctx, step)

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
            self._fail(outbox, step, missing, step.usage)
            return outbox
        node = table.nodes.get(self.agent)
        if node is not None and node.join is not None and step.resume is None:
            merged = self._joins.arrive(ctx, outbox, node, step)
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
            event_id=f"{step.task_id}:{step.step_id}:{EventType.STEP_STARTED}",
        )
        profile = self._profile(catalog, node)
        tally = UsageTally()
        result = await self._run_with_retries(profile, step, tally)
        self._finish(outbox, node, step, result, step.usage + tally.total())
        return outbox

    def _abandoned(
        self, ctx: PartitionContext, outbox: Outbox, node: RouteNode | None, step: Step
    ) -> None:
        """A notice that a branch of a join failed: count it, so the join's state is cleared."""
        if node is None or node.join is None:
            log.warning("a failed-branch notice reached %s, which joins nothing", self.agent)
            return
        merged = self._joins.arrive(ctx, outbox, node, step)
        assert merged is None  # a failed branch never completes a join

    def _fail(self, outbox: Outbox, step: Step, error: str, usage: PathUsage) -> None:
        """The step failed for good: DLQ, task failure, and notices to the joins it was on its
        way to (so their waiting state is cleared and they never run)."""
        self._out.fail_step(outbox, step, error, dlq=self._names.agent_dlq(self.agent), usage=usage)
        for notice in abandoned_notices(step, error):
            self._out.step(outbox, notice)

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
        self, profile: AgentProfile, step: Step, tally: UsageTally
    ) -> LoopResult:
        attempts = self._settings.step_retry_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await self._loop.run(profile, step, tally)
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

    def _finish(
        self,
        outbox: Outbox,
        node: RouteNode | None,
        step: Step,
        result: LoopResult,
        usage: PathUsage,
    ) -> None:
        """Route the step's result; `usage` is the path's usage with this step's calls."""
        model_calls = {**step.model_calls, self.agent: result.model_calls}
        if isinstance(result, Failed):
            self._fail(outbox, step, result.error, usage)
            return
        if isinstance(result, Delegated):
            worker = worker_step(
                step,
                worker=result.worker,
                instruction=result.instruction,
                tool_call_id=result.tool_call_id,
                state=result.state,
                model_calls=model_calls,
                usage=usage,
            )
            self._out.step(outbox, worker)
            self._out.delegated(outbox, step, worker)
            return
        if isinstance(result, AwaitingApproval):
            self._park_for_approval(outbox, step, result, model_calls, usage)
            return
        assert isinstance(result, Finished)
        outcome = allowed_outcome(node, result.outcome)
        output = StepOutput(
            agent=self.agent, step_id=step.step_id, output=result.output, outcome=outcome
        )
        if step.delegation is not None:
            back = return_step(step, output, model_calls=model_calls, usage=usage)
            self._out.step(outbox, back)
            self._out.completed(outbox, step, output, result.turns, [back.agent], None)
            return
        if node is None:
            self._out.completed(outbox, step, output, result.turns, [], None)
            self._out.task_completed(outbox, step, output, usage=usage)
            return
        route = choose_edges(node, outcome, visits_of(step))
        table = self._catalog.catalog.routing[step.system]
        children = next_steps(table, step, output, route, model_calls=model_calls, usage=usage)
        for child in children:
            self._out.step(outbox, child)
        self._out.completed(
            outbox, step, output, result.turns, [c.agent for c in children], route.loop_exit
        )
        if route.ends_task:
            self._out.task_completed(outbox, step, output, usage=usage)

    def _park_for_approval(
        self,
        outbox: Outbox,
        step: Step,
        result: AwaitingApproval,
        model_calls: dict[str, int],
        usage: PathUsage,
    ) -> None:
        parked = msgspec.structs.replace(
            step,
            model_calls=model_calls,
            resume={**result.state, "approval_for": result.tool_call.id},
            usage=usage,
        )
        now = utcnow()
        # The policy service decides the expiry (its approval TTL); it expires the approval.
        expires = result.decision.approval_expires_at or now + timedelta(
            seconds=DEFAULT_APPROVAL_TTL_S
        )
        request = AuthorizationRequest(
            request_id=result.decision.request_id,
            task_id=step.task_id,
            system=step.system,
            agent=self.agent,
            step_id=step.step_id,
            action=Action.TOOL_CALL,
            tool=result.tool_call.name,
            reply_to="-",
            deadline=expires,
        )
        approval = ApprovalRequest(
            approval_id=result.approval_id,
            task_id=step.task_id,
            system=step.system,
            agent=self.agent,
            step=parked,
            request=request,
            arguments=_redacted(result.tool_call.arguments),
            reason=result.decision.reason,
            requested_at=now,
            expires_at=expires,
        )
        self._out.raw(outbox, self._names.approvals, step.task_id, approval)
        self._out.event(
            outbox,
            step,
            ApprovalRequestedData(
                approval_id=result.approval_id,
                action=str(Action.TOOL_CALL),
                tool=result.tool_call.name,
                arguments=_redacted(result.tool_call.arguments),
                reason=result.decision.reason,
                expires_at=expires,
            ),
            suffix=f"approval.requested:{result.approval_id}",
        )

    # -- catalog --------------------------------------------------------------------------------

    def _provider(self, endpoint: ModelEndpoint) -> ModelProvider:
        key = (endpoint.metadata.name, msgspec.json.encode(endpoint.model_dump(mode="json")).hex())
        provider = self._providers.get(key)
        if provider is None:
            provider = self._provider_factory(endpoint)
            self._providers[key] = provider
        return provider

    def _profile(self, catalog: Catalog, node: RouteNode | None) -> AgentProfile:
        agent = catalog.agent(self.agent)
        choices = [catalog.model_for(self.agent), *catalog.fallbacks_for(self.agent)]
        models = [
            ModelChoice(
                endpoint=endpoint.metadata.name,
                provider_name=endpoint.spec.provider,
                model=model,
                provider=self._provider(endpoint),
                pricing=endpoint.spec.pricing,
            )
            for endpoint, model in choices
        ]
        delegates = [e.to for e in node.edges if e.kind == "delegate"] if node else []
        return AgentProfile(
            name=self.agent,
            system_prompt=system_prompt(self.agent, agent.spec.prompt, agent.spec.description),
            models=models,
            tools=list(agent.spec.tools),
            delegates=delegates,
            outcomes=list(node.outcomes) if node else [],
            max_steps=agent.spec.limits.max_steps,
            timeout_s=float(agent.spec.limits.timeout_s),
            max_output_tokens=self._settings.max_output_tokens,
        )


def _redacted(arguments: dict[str, Any]) -> dict[str, Any]:
    from actors.tools.redaction import redact_arguments

    return redact_arguments(arguments)
