"""`podium stack up|down|status|agent-users`: the local Kafka and PostgreSQL for development and
tests, and the principals of the agents' actors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from podium.commands import ADMIN
from podium.output import OutputFormat, console, emit

if TYPE_CHECKING:
    from podium.stack import StackSettings

stack_app = typer.Typer(
    help="The local development stack: Apache Kafka (KRaft) and PostgreSQL on 127.0.0.1.",
    no_args_is_help=True,
)

KafkaPort = Annotated[
    int | None, typer.Option("--kafka-port", help="Kafka's port [env PODIUM_STACK_KAFKA_PORT]")
]
ControllerPort = Annotated[
    int | None,
    typer.Option(
        "--controller-port", help="KRaft controller port [env PODIUM_STACK_KAFKA_CONTROLLER_PORT]"
    ),
]
PostgresPort = Annotated[
    int | None,
    typer.Option("--postgres-port", help="PostgreSQL's port [env PODIUM_STACK_POSTGRES_PORT]"),
]
Output = Annotated[OutputFormat, typer.Option("--output", "-o", help="table, json or yaml")]


def _settings(**overrides: Any) -> StackSettings:
    from podium.core.settings import load_settings
    from podium.stack import StackSettings

    settings = load_settings(StackSettings)
    given = {key: value for key, value in overrides.items() if value is not None}
    return StackSettings.model_validate({**settings.model_dump(), **given}) if given else settings


@stack_app.command("up")
def up_command(
    kafka_port: KafkaPort = None,
    controller_port: ControllerPort = None,
    postgres_port: PostgresPort = None,
) -> None:
    """Start Kafka and PostgreSQL (idempotent: what runs already is reported, not restarted)."""
    from podium.stack import masked_dsn, state_file, up

    settings = _settings(
        kafka_port=kafka_port,
        kafka_controller_port=controller_port,
        postgres_port=postgres_port,
    )
    report = up(settings, progress=lambda message: console.status(message, spinner="dots"))
    kafka, pg = report.state.kafka, report.state.postgres
    assert kafka is not None and pg is not None
    verb = {True: "started", False: "already running"}
    console.print(
        f"Kafka {kafka.version}: {verb[report.started_kafka]} (pid {kafka.pid})  "
        f"bootstrap [bold]{kafka.bootstrap}[/bold]",
        soft_wrap=True,
    )
    console.print(
        f"PostgreSQL: {verb[report.started_postgres]} (pid {pg.pid})  "
        f"dsn [bold]{masked_dsn(pg.dsn)}[/bold]",
        soft_wrap=True,
    )
    console.print(f"state: {state_file()}", style="dim")


@stack_app.command("status")
def status_command(output: Output = OutputFormat.TABLE) -> None:
    """Show what runs: pids, ports, the bootstrap address and the DSN."""
    from podium.stack import state_file, status

    rows = status()
    value = [
        {
            "component": row.name,
            "running": row.running,
            "pid": row.pid,
            "port": row.port,
            "address": row.address,
        }
        for row in rows
    ]
    emit(
        value,
        output,
        rows=[{**r, "running": "yes" if r["running"] else "no"} for r in value],
        columns=["component", "running", "pid", "port", "address"],
        title=f"stack {state_file().parent}",
    )


@stack_app.command("down")
def down_command() -> None:
    """Stop Kafka and PostgreSQL; their data stays for the next `up`."""
    from podium.stack import down

    with console.status("Stopping the stack...", spinner="dots"):
        down(_settings())
    console.print("stack stopped")


@stack_app.command("agent-users")
def agent_users_command(
    agents: Annotated[list[str], typer.Argument(help="The agent roles, e.g. researcher writer.")],
) -> None:
    """Give each agent's actors a Kafka principal of their own (podium-actor-AGENT).

    Its password goes to the stack's secrets/ folder; its ACLs allow its own inbox, join
    changelog, consumer group, transactional ids and reply topics, and routing steps to other
    agents, and nothing of another agent's. `podium actor AGENT` then connects as it.
    Idempotent; `podium stack up` grants them again on a new broker.
    """
    from podium.stack import StackError, grant_agent_users

    try:
        users = grant_agent_users(agents)
    except (StackError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    for agent, user in zip(agents, users, strict=True):
        console.print(f"{agent}: principal User:{user}")


def register(app: typer.Typer) -> None:
    app.add_typer(stack_app, name="stack", rich_help_panel=ADMIN)
