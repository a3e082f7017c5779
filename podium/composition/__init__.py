"""The composition root: every service is built here, from settings, and nowhere else.

The command line (`podium dispatcher|actor|policy|ledger|dev`) and the tests build services
through these functions, so what runs in production is what the tests run. Their settings come
from `podium.environment` (the other half of the root: the environment, with the local stack's
addresses and dev keys as defaults). Below these two modules nothing knows the dev stack exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable

from actors.actor import ActorService
from actors.catalog_tools import CatalogTools
from actors.dispatcher import DispatcherService
from actors.memory.stores import MemoryConfig, MemoryStores
from actors.settings import ActorSettings, DispatcherSettings
from actors.tools import PythonSandbox, ToolOptions
from actors.worker import worker_settings
from ledger.service import LedgerService
from ledger.settings import LedgerSettings
from manifests.watcher import CatalogWatcher
from podium import environment
from podium.composition.ledger_api import CatalogWebhooks, KafkaSubmitter, ledger_decider
from podium.core.lifecycle import Service, set_when_all
from podium.core.settings import DatabaseSettings, KafkaSettings, load_settings
from policy_service.client import Authorizer
from policy_service.decision import Pricer
from policy_service.rules_source import RulesSource, WatchedRules
from policy_service.service import PolicyService
from policy_service.settings import (
    PolicySettings,
    resolve_approver_keys,
    resolve_signing_key,
    resolve_verify_keys,
)
from scheduler.service import SchedulerService
from scheduler.settings import SchedulerSettings
from topics.acls import Role

log = logging.getLogger(__name__)

# --- the services ---------------------------------------------------------------------------


def policy_service(
    kafka: KafkaSettings,
    settings: PolicySettings,
    database: DatabaseSettings,
    *,
    rules: RulesSource | None = None,
    pricer: Pricer | None = None,
    db_schema: str = "policy",
) -> PolicyService:
    """The policy service; its rules are the applied manifests' unless `rules` is given (tests
    and benchmarks pass fixed rules, a price list and a schema of their own)."""
    names = environment.topic_names(kafka)
    return PolicyService(
        kafka,
        names,
        settings,
        signing_key=resolve_signing_key(settings, dev_stack=environment.on_dev_stack(kafka)),
        approver_keys=resolve_approver_keys(settings, dev_stack=environment.on_dev_stack(kafka)),
        database_url=database.url,
        rules=rules or WatchedRules(kafka, names),
        pricer=pricer,
        db_schema=db_schema,
    )


def ledger_service(
    settings: LedgerSettings,
    database: DatabaseSettings,
    kafka: KafkaSettings,
    *,
    ingest: bool = True,
    record_api_url: bool = True,
) -> LedgerService:
    submitter = KafkaSubmitter(kafka, environment.topic_names(kafka))
    return LedgerService(
        settings,
        database,
        kafka,
        ingest=ingest,
        decider=ledger_decider(kafka),
        submitter=submitter,
        webhooks=CatalogWebhooks(submitter, environment.ledger_sealing_key(settings, kafka)),
        on_api_url=environment.record_api_url if record_api_url else None,
        anchor_signer=environment.anchor_signer(settings) if ingest else None,
    )


class DispatcherRole:
    """`podium dispatcher`: the catalog watcher and the dispatcher, in one lifespan."""

    name = "dispatcher"

    def __init__(self, kafka: KafkaSettings, settings: DispatcherSettings) -> None:
        self._kafka = kafka
        self._settings = settings
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        names = environment.topic_names(self._kafka)
        watcher = CatalogWatcher(self._kafka, names, service="dispatcher")
        await watcher.start()
        try:
            service = DispatcherService(
                self._kafka, names, settings=self._settings, catalog=watcher
            )
            async with asyncio.TaskGroup() as group:
                group.create_task(set_when_all(self.ready, [service.processor.ready], stop))
                await service.run(stop)
        finally:
            await watcher.stop()


class SchedulerRole:
    """`podium scheduler`: the catalog watcher and one replica of the scheduler group."""

    name = "scheduler"

    def __init__(self, kafka: KafkaSettings, settings: SchedulerSettings) -> None:
        self._kafka = kafka
        self._settings = settings
        self.service: SchedulerService | None = None
        self.ready = asyncio.Event()
        """Set once the catalog is read and the scheduler runs (it reports no assignment)."""

    async def run(self, stop: asyncio.Event) -> None:
        names = environment.topic_names(self._kafka)
        watcher = CatalogWatcher(self._kafka, names, service="scheduler")
        await watcher.start()
        try:
            self.service = SchedulerService(
                self._kafka, names, settings=self._settings, catalog=watcher
            )
            self.ready.set()
            await self.service.run(stop)
        finally:
            await watcher.stop()


class ActorRole:
    """`podium actor AGENT` (and the actors of `podium dev`): the catalog watcher, the policy
    client and the actors, in one lifespan.

    `agents=None` serves every agent of every applied system and, with `follow_catalog`, starts
    actors for agents applied later (actors of agents that disappear run until the process stops).
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        agents: list[str] | None,
        settings: ActorSettings,
        policy: PolicySettings,
        *,
        dispatcher: DispatcherSettings | None = None,
        dispatcher_kafka: KafkaSettings | None = None,
        extra: list[Service] | None = None,
        follow_catalog: bool = False,
        worker: str | None = None,
    ) -> None:
        self.name = "actors" if agents is None else f"actor:{','.join(agents)}"
        self._worker = worker
        """The applied `Worker` that bounds this replica (`actors/worker.py`)."""
        self._kafka = kafka
        self._agents = agents
        self._settings = settings
        self._verify_keys = resolve_verify_keys(policy, dev_stack=environment.on_dev_stack(kafka))
        self._sealing_key = environment.actor_sealing_key(settings, kafka)
        self._memory = MemoryConfig(
            database_url=environment.actor_memory_database_url(settings, kafka),
            schema=settings.memory_schema,
            sealing_key=self._sealing_key,
            allowed_secret_env=settings.allowed_secret_env,
        )
        self._dispatcher = dispatcher
        self._dispatcher_kafka = dispatcher_kafka or kafka
        self._extra = extra or []
        self._follow = follow_catalog
        # An actor serving one agent names it in its reply topic: that agent's own principal
        # may read it (`topics.acls.agent_actor_bindings`).
        self._single_agent = agents[0] if agents is not None and len(agents) == 1 else None
        self.ready = asyncio.Event()
        """Set once the actors of the agents wanted at start (and the extra services) serve."""

    async def run(self, stop: asyncio.Event) -> None:
        kafka = self._kafka
        names = environment.topic_names(kafka)
        watcher = CatalogWatcher(kafka, names, service="actor")
        await watcher.start()
        authorizer: Authorizer | None = None
        tools: CatalogTools | None = None
        try:
            if self._worker is not None:
                self._settings = worker_settings(
                    watcher.catalog, self._worker, self._agents or [], self._settings
                )
                log.info(
                    "serving as Worker/%s: %d steps in flight",
                    self._worker,
                    self._settings.max_in_flight,
                )
            authorizer = Authorizer(
                kafka,
                names,
                instance_id=names.actor_instance(self._single_agent, uuid.uuid4().hex[:8]),
                verify_keys=self._verify_keys,
                timeout_s=self._settings.policy_timeout_s,
            )
            await authorizer.start()
            tools = CatalogTools(
                watcher,
                python=PythonSandbox.from_settings(self._settings),
                sealing_key=self._sealing_key,
                memory=MemoryStores(self._memory),
                options=ToolOptions.from_settings(self._settings),
            )
            async with asyncio.TaskGroup() as group:
                parts = [service.ready for service in self._extra]
                for service in self._extra:
                    group.create_task(service.run(stop), name=service.name)
                if self._dispatcher is not None:
                    dispatcher = DispatcherService(
                        self._dispatcher_kafka, names, settings=self._dispatcher, catalog=watcher
                    )
                    parts.append(dispatcher.processor.ready)
                    group.create_task(dispatcher.run(stop), name=dispatcher.name)
                started: set[str] = set()
                announcing = False
                while not stop.is_set():
                    wanted = (
                        list(self._agents)
                        if self._agents is not None
                        else watcher.catalog.agents_in_systems()
                    )
                    for agent in wanted:
                        if agent in started:
                            continue
                        if agent not in watcher.catalog.agents and self._agents is not None:
                            log.warning("agent %s is not applied (yet); serving it anyway", agent)
                        actor = ActorService(
                            kafka,
                            names,
                            agent,
                            settings=self._settings,
                            catalog=watcher,
                            gate=authorizer,
                            tools=tools,
                            sealing_key=self._sealing_key,
                        )
                        started.add(agent)
                        log.info("starting actor %s", agent)
                        group.create_task(actor.run(stop), name=actor.name)
                        parts.append(actor.processor.ready)
                    if not announcing:  # the agents applied later do not delay readiness
                        group.create_task(set_when_all(self.ready, parts, stop))
                        announcing = True
                    if not self._follow:
                        await stop.wait()
                        break
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            await stop.wait()
        finally:
            if tools is not None:
                await tools.aclose()
            if authorizer is not None:
                await authorizer.stop()
            await watcher.stop()


def dev_role(
    kafka: KafkaSettings, as_role: Callable[[Role], KafkaSettings] | None = None
) -> ActorRole:
    """`podium dev`: the dispatcher, an actor per applied agent, the policy service, the ledger
    and the scheduler, in one process. `as_role` gives each its own principal (on the local
    stack, `environment.kafka_settings`); without it every service uses `kafka`."""

    def of(role: Role) -> KafkaSettings:
        return as_role(role) if as_role is not None else kafka

    policy = environment.policy_settings()
    database = environment.database_settings()
    extra: list[Service] = [
        policy_service(of("policy"), policy, database),
        ledger_service(load_settings(LedgerSettings), database, of("ledger")),
        SchedulerRole(of("scheduler"), load_settings(SchedulerSettings)),
    ]
    return ActorRole(
        of("actor"),
        None,
        load_settings(ActorSettings),
        policy,
        dispatcher=load_settings(DispatcherSettings),
        dispatcher_kafka=of("dispatcher"),
        extra=extra,
        follow_catalog=True,
    )
