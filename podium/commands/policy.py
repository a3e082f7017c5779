"""`podium policy` (the service), `podium approvals`, `podium approve ID`, `podium deny ID`."""

from __future__ import annotations

import asyncio
import getpass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from podium.commands import SERVICES, TASKS
from podium.output import OutputFormat, console, emit

if TYPE_CHECKING:
    from podium.core.settings import KafkaSettings
    from policy_service.approvals import ApprovalEntry
    from topics.names import TopicNames

Output = Annotated[OutputFormat, typer.Option("--output", "-o", help="table, json or yaml")]
Reason = Annotated[str, typer.Option("--reason", help="Why, recorded with the decision.")]
By = Annotated[str | None, typer.Option("--by", help="Who decides (default: the OS user name).")]
ApprovalId = Annotated[str, typer.Argument(help="The approval id (see `podium approvals`).")]


def _kafka() -> tuple[KafkaSettings, TopicNames]:
    from podium import environment

    kafka = environment.kafka_settings()
    return kafka, environment.topic_names(kafka)


def policy_command() -> None:
    """Run the policy service: authorizes every model and tool call, keeps budgets and approvals."""
    from podium import composition, environment
    from podium.core import tracing
    from podium.core.lifecycle import run_services
    from podium.core.logs import configure_logging

    configure_logging()
    tracing.configure_from_env("podium-policy")
    service = composition.policy_service(
        environment.kafka_settings("policy"),
        environment.policy_settings(),
        environment.database_settings(),
    )
    asyncio.run(run_services([service]))


def _row(entry: ApprovalEntry) -> dict[str, Any]:
    request = entry.request
    return {
        "id": request.approval_id,
        "status": entry.status,
        "task": request.task_id,
        "agent": request.agent,
        "action": f"{request.request.action}:{request.request.tool or request.request.model}",
        "reason": request.reason,
        "requested": request.requested_at.isoformat(timespec="seconds"),
        "expires": request.expires_at.isoformat(timespec="seconds"),
        "decided_by": entry.decision.decided_by if entry.decision else "",
    }


def approvals_command(
    status: Annotated[
        str, typer.Option("--status", help="pending, granted, denied, expired or all")
    ] = "pending",
    output: Output = OutputFormat.TABLE,
) -> None:
    """List approvals (the pending ones by default)."""
    from podium.composition import ledger_api
    from policy_service.approvals import list_approvals

    kafka, names = _kafka()
    trusted = ledger_api.decision_keys(kafka)
    entries = asyncio.run(list_approvals(kafka, names, trusted, status))
    value = [
        {
            **_row(e),
            "arguments": e.request.arguments,
            "decision": e.decision,
        }
        for e in entries
    ]
    if output is OutputFormat.TABLE and not entries:
        console.print(f"no {status} approvals")
        return
    emit(value, output, rows=[_row(e) for e in entries], title=f"{status} approvals")


def _decide(approval_id: str, *, granted: bool, reason: str, by: str | None) -> None:
    from podium.composition import ledger_api

    kafka, names = _kafka()
    approver = ledger_api.approver(kafka)
    decided_by = by or getpass.getuser()
    decision = asyncio.run(
        approver.decide(
            kafka, names, approval_id, granted=granted, decided_by=decided_by, reason=reason
        )
    )
    console.print(
        f"approval {decision.approval_id} [bold]{decision.decision}[/bold] by {decided_by} at "
        f"{decision.decided_at.isoformat(timespec='seconds')} (signed with approver key "
        f"{decision.key_id}); the step resumes"
    )


def approve_command(approval_id: ApprovalId, reason: Reason = "", by: By = None) -> None:
    """Grant a pending approval: the parked step resumes and makes its call."""
    _decide(approval_id, granted=True, reason=reason, by=by)


def deny_command(approval_id: ApprovalId, reason: Reason = "", by: By = None) -> None:
    """Deny a pending approval: the parked step resumes without making its call."""
    _decide(approval_id, granted=False, reason=reason, by=by)


def register(app: typer.Typer) -> None:
    app.command("policy", rich_help_panel=SERVICES)(policy_command)
    app.command("approvals", rich_help_panel=TASKS)(approvals_command)
    app.command("approve", rich_help_panel=TASKS)(approve_command)
    app.command("deny", rich_help_panel=TASKS)(deny_command)
