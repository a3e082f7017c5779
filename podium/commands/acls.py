"""`podium acls show|apply`: the ACL table of `topics.acls`, printed or applied to a cluster.

A target is a service role (`dispatcher`, `actor`, `policy`, `ledger`, `scheduler`, `operator`,
`submitter`) or `agent/NAME`, the actors serving only that agent. Principals are named as on the
local stack (`User:podium-<role>`, `User:podium-actor-<agent>`) unless `--principal` says
otherwise. compose.yaml's `kafka-acls` service runs `podium acls apply` as the broker's admin.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Annotated

import typer

from podium.commands import ADMIN
from podium.output import OutputFormat, console, emit

if TYPE_CHECKING:
    from topics.acls import AclBinding

acls_app = typer.Typer(
    help="The Kafka ACLs of each service role and agent: show them, or apply them as an admin.",
    no_args_is_help=True,
)

Targets = Annotated[
    list[str] | None,
    typer.Argument(
        help="Roles (dispatcher, actor, policy, ledger, scheduler, operator, submitter) or "
        "agent/NAME; every role when none is given."
    ),
]
Prefix = Annotated[
    str | None,
    typer.Option("--prefix", help="The topic prefix [default: PODIUM_KAFKA_TOPIC_PREFIX]"),
]
Principal = Annotated[
    str | None,
    typer.Option(
        "--principal", help="User:NAME, for a single target [default: User:podium-<role>]"
    ),
]


def _bindings(targets: list[str], prefix: str, principal: str | None) -> list[AclBinding]:
    from topics.acls import ROLES, acl_bindings, agent_actor_bindings, agent_user, role_user
    from topics.names import TopicNames

    if principal is not None and len(targets) != 1:
        raise ValueError("--principal names the principal of one target: give exactly one")
    names = TopicNames(prefix)
    found: list[AclBinding] = []
    for target in targets:
        if target.startswith("agent/"):
            agent = target.removeprefix("agent/")
            who = principal or f"User:{agent_user(agent)}"
            found += agent_actor_bindings(agent, names, who)
        elif target in ROLES:
            who = principal or f"User:{role_user(target)}"
            found += acl_bindings(target, names, who)
        else:
            raise ValueError(
                f"unknown target {target!r}: a role ({', '.join(ROLES)}) or agent/NAME"
            )
    return found


def _resolve(targets: list[str] | None, prefix: str | None) -> tuple[list[str], str]:
    from topics.acls import ROLES
    from topics.names import TopicNames

    # KafkaSettings' topic_prefix, read alone: the table needs no broker and no credentials
    default = os.environ.get("PODIUM_KAFKA_TOPIC_PREFIX") or TopicNames().prefix
    return list(targets or ROLES), prefix or default


@acls_app.command("show")
def show_command(
    targets: Targets = None,
    prefix: Prefix = None,
    principal: Principal = None,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="table, json or yaml")
    ] = OutputFormat.TABLE,
) -> None:
    """Print the ALLOW bindings (principal, resource, pattern, operation) of the targets."""
    chosen, chosen_prefix = _resolve(targets, prefix)
    try:
        bindings = _bindings(chosen, chosen_prefix, principal)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    value = [
        {
            "principal": b.principal,
            "resource": b.resource_type,
            "pattern": b.pattern_type,
            "name": b.name,
            "operation": b.operation,
        }
        for b in bindings
    ]
    emit(value, output, columns=["principal", "resource", "pattern", "name", "operation"])


@acls_app.command("apply")
def apply_command(
    targets: Targets = None, prefix: Prefix = None, principal: Principal = None
) -> None:
    """Create the targets' bindings on the cluster (idempotent), as the Kafka principal of the
    settings (PODIUM_KAFKA_SASL_*; on the local stack, its admin), which must be allowed to
    alter the cluster's ACLs."""
    from podium import environment
    from topics.acl_admin import AclError, create_acls

    chosen, chosen_prefix = _resolve(targets, prefix)
    try:
        bindings = _bindings(chosen, chosen_prefix, principal)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    try:
        asyncio.run(create_acls(environment.admin_kafka_settings(), bindings))
    except AclError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(
        f"{len(bindings)} bindings applied for {', '.join(chosen)} under prefix {chosen_prefix}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(acls_app, name="acls", rich_help_panel=ADMIN)
