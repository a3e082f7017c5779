"""Service commands: `podium dispatcher`, `podium actor AGENT`, `podium scheduler`, `podium dev`.

`podium dev` runs, in one process: the catalog watcher, the dispatcher, one actor for every agent
of every applied system, and the policy service and the ledger. It waits for the catalog (apply
manifests first, or while it waits), and when the catalog changes it starts actors for newly
applied agents (actors of agents that disappear keep running until the process stops). The
services themselves are built by the composition root (`podium.composition`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from podium.commands import SERVICES
from podium.output import err_console

if TYPE_CHECKING:
    from podium.core.settings import KafkaSettings
    from topics.acls import Role


def _kafka(service_name: str, role: Role, *, agent: str | None = None) -> KafkaSettings:
    from podium import environment
    from podium.core import tracing
    from podium.core.logs import configure_logging

    configure_logging()
    tracing.configure_from_env(service_name)
    return environment.kafka_settings(role, agent=agent)


def register(app: typer.Typer) -> None:
    @app.command(rich_help_panel=SERVICES)
    def dispatcher() -> None:
        """Run the dispatcher: turns TaskRequested into the first steps of their systems."""
        from actors.settings import DispatcherSettings
        from podium import composition
        from podium.core.lifecycle import run_services
        from podium.core.settings import load_settings

        kafka = _kafka("podium-dispatcher", "dispatcher")
        settings = load_settings(DispatcherSettings)
        role = composition.DispatcherRole(kafka, settings)
        asyncio.run(run_services([role], grace_s=settings.grace_s + 5))

    @app.command(rich_help_panel=SERVICES)
    def actor(
        agent: Annotated[str, typer.Argument(help="The agent role to serve.")],
        max_in_flight: Annotated[
            int | None,
            typer.Option(
                "--max-in-flight",
                "-c",
                min=1,
                max=10_000,
                help="Steps held at once (PODIUM_ACTOR_MAX_IN_FLIGHT).",
            ),
        ] = None,
        worker: Annotated[
            str | None,
            typer.Option(
                "--worker",
                help="Serve as this applied Worker: its max_concurrent_tasks are the steps in "
                "flight, and its supported_models must cover the agent's models.",
            ),
        ] = None,
    ) -> None:
        """Run one replica of an agent role (consumer group podium.actor.AGENT).

        On the local stack it connects as the agent's own principal when `podium stack
        agent-users AGENT` made one, else as the shared actor principal."""
        from actors.settings import ActorSettings
        from actors.worker import WorkerRefused
        from podium import composition, environment
        from podium.core.lifecycle import run_services
        from podium.core.settings import load_settings

        if worker is not None and max_in_flight is not None:
            err_console.print("--worker sets the steps in flight; drop --max-in-flight")
            raise typer.Exit(2)
        kafka = _kafka(f"podium-actor-{agent}", "actor", agent=agent)
        settings = load_settings(ActorSettings)
        if max_in_flight is not None:
            settings = settings.model_copy(update={"max_in_flight": max_in_flight})
        role = composition.ActorRole(
            kafka, [agent], settings, environment.policy_settings(), worker=worker
        )
        try:
            asyncio.run(run_services([role], grace_s=settings.grace_s + 5))
        except* WorkerRefused as refused:
            for error in refused.exceptions:
                err_console.print(f"refused: {error}", highlight=False)
            raise typer.Exit(1) from None

    @app.command(rich_help_panel=SERVICES)
    def scheduler() -> None:
        """Run one replica of the scheduler: starts each TaskSchedule's task on its slots."""
        from podium import composition
        from podium.core.lifecycle import run_services
        from podium.core.settings import load_settings
        from scheduler.settings import SchedulerSettings

        kafka = _kafka("podium-scheduler", "scheduler")
        settings = load_settings(SchedulerSettings)
        role = composition.SchedulerRole(kafka, settings)
        asyncio.run(run_services([role], grace_s=settings.grace_s + 5))

    @app.command(rich_help_panel=SERVICES)
    def dev() -> None:
        """Run everything in one process: dispatcher, an actor per applied agent, policy, ledger."""
        from actors.settings import ActorSettings
        from podium import composition, environment
        from podium.core.lifecycle import run_services
        from podium.core.settings import load_settings

        kafka = _kafka("podium-dev", "actor")
        role = composition.dev_role(kafka, environment.kafka_settings)
        asyncio.run(run_services([role], grace_s=load_settings(ActorSettings).grace_s + 5))
