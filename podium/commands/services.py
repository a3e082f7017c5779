"""Service commands of the actor runtime: `podium dispatcher`, `podium actor AGENT`, `podium dev`.

`podium dev` runs, in one process: the catalog watcher, the dispatcher, one actor for every agent
of every applied system, and the policy service and the ledger. It waits for the catalog (apply
manifests first, or while it waits), and when the catalog changes it starts actors for newly
applied agents (actors of agents that disappear keep running until the process stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Annotated

import typer

from actors.actor import ActorService, CatalogTools
from actors.dispatcher import DispatcherService
from actors.settings import ActorSettings, DispatcherSettings
from manifests.watcher import CatalogWatcher
from podium import tracing
from podium.lifecycle import Service, run_services
from podium.logs import configure_logging
from podium.settings import DatabaseSettings, KafkaSettings, load_settings
from policy_service.client import Authorizer
from policy_service.settings import PolicySettings, resolve_hmac_key
from topics.names import TopicNames

log = logging.getLogger(__name__)


class WatcherService:
    """Keeps the catalog current for the services of this process."""

    name = "catalog"

    def __init__(self, watcher: CatalogWatcher) -> None:
        self.watcher = watcher

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()


class ActorRole:
    """`podium actor AGENT`: the watcher, the policy client and one actor, in one lifespan."""

    def __init__(
        self,
        kafka: KafkaSettings,
        names: TopicNames,
        agents: list[str] | None,
        settings: ActorSettings,
        *,
        dispatcher: DispatcherSettings | None = None,
        extra: list[Service] | None = None,
        follow_catalog: bool = False,
    ) -> None:
        self.name = "actors" if agents is None else f"actor:{','.join(agents)}"
        self._kafka = kafka
        self._names = names
        self._agents = agents
        self._settings = settings
        self._dispatcher = dispatcher
        self._extra = extra or []
        self._follow = follow_catalog

    async def run(self, stop: asyncio.Event) -> None:
        kafka, names = self._kafka, self._names
        watcher = CatalogWatcher(kafka, names)
        await watcher.start()
        authorizer: Authorizer | None = None
        try:
            authorizer = Authorizer(
                kafka,
                names,
                instance_id=f"actor-{uuid.uuid4().hex[:8]}",
                hmac_key=resolve_hmac_key(load_settings(PolicySettings)),
                timeout_s=self._settings.policy_timeout_s,
            )
            await authorizer.start()
            tools = CatalogTools(watcher)
            async with asyncio.TaskGroup() as group:
                for service in self._extra:
                    group.create_task(service.run(stop), name=service.name)
                if self._dispatcher is not None:
                    dispatcher = DispatcherService(
                        kafka, names, settings=self._dispatcher, catalog=watcher
                    )
                    group.create_task(dispatcher.run(stop), name=dispatcher.name)
                started: set[str] = set()
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
                        )
                        started.add(agent)
                        log.info("starting actor %s", agent)
                        group.create_task(actor.run(stop), name=actor.name)
                    if not self._follow:
                        await stop.wait()
                        break
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            await stop.wait()
        finally:
            if authorizer is not None:
                await authorizer.stop()
            await watcher.stop()


def _common() -> tuple[KafkaSettings, TopicNames]:
    configure_logging()
    kafka = load_settings(KafkaSettings)
    return kafka, TopicNames(kafka.topic_prefix)


def register(app: typer.Typer) -> None:
    @app.command()
    def dispatcher() -> None:
        """Run the dispatcher: turns TaskRequested into the first steps of their systems."""
        kafka, names = _common()
        tracing.configure_from_env("podium-dispatcher")
        settings = load_settings(DispatcherSettings)

        class _Dispatcher:
            name = "dispatcher"

            async def run(self, stop: asyncio.Event) -> None:
                watcher = CatalogWatcher(kafka, names)
                await watcher.start()
                try:
                    await DispatcherService(kafka, names, settings=settings, catalog=watcher).run(
                        stop
                    )
                finally:
                    await watcher.stop()

        asyncio.run(run_services([_Dispatcher()], grace_s=settings.grace_s + 5))

    @app.command()
    def actor(
        agent: Annotated[str, typer.Argument(help="The agent role to serve.")],
        concurrency: Annotated[
            int | None,
            typer.Option("--concurrency", "-c", help="Partitions processed at the same time."),
        ] = None,
    ) -> None:
        """Run one replica of an agent role (consumer group podium.actor.AGENT)."""
        kafka, names = _common()
        tracing.configure_from_env(f"podium-actor-{agent}")
        settings = load_settings(ActorSettings)
        if concurrency is not None:
            settings = settings.model_copy(update={"concurrency": concurrency})
        role = ActorRole(kafka, names, [agent], settings)
        asyncio.run(run_services([role], grace_s=settings.grace_s + 5))

    @app.command()
    def dev() -> None:
        """Run everything in one process: dispatcher, an actor per applied agent, policy, ledger."""
        kafka, names = _common()
        tracing.configure_from_env("podium-dev")
        settings = load_settings(ActorSettings)
        extra: list[Service] = []
        extra.extend(_policy_services(kafka, names))
        extra.extend(_ledger_services(kafka))
        role = ActorRole(
            kafka,
            names,
            None,
            settings,
            dispatcher=load_settings(DispatcherSettings),
            extra=extra,
            follow_catalog=True,
        )
        asyncio.run(run_services([role], grace_s=settings.grace_s + 5))


def _policy_services(kafka: KafkaSettings, names: TopicNames) -> list[Service]:
    from policy_service.service import PolicyService, WatchedRules

    settings = load_settings(PolicySettings)
    database = load_settings(DatabaseSettings)
    return [
        PolicyService(
            kafka,
            names,
            settings,
            hmac_key=resolve_hmac_key(settings),
            database_url=database.url,
            rules=WatchedRules(kafka, names),
        )
    ]


def _ledger_services(kafka: KafkaSettings) -> list[Service]:
    from ledger.service import LedgerService
    from ledger.settings import LedgerSettings

    return [
        LedgerService(
            load_settings(LedgerSettings),
            load_settings(DatabaseSettings),
            kafka,
            record_api_url=True,
        )
    ]
