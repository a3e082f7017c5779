"""`podium audit` and `podium token`: the commands an auditor and an operator run on the ledger's
database directly.

`audit verify` recomputes the chains from the rows themselves and checks them against the signed
anchors on Kafka; `token ...` creates, lists and revokes the ledger API's bearer tokens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from podium.commands import ADMIN
from podium.output import OutputFormat, OutputOption, console, emit, err_console

if TYPE_CHECKING:
    import asyncpg

    from ledger.audit import VerifyReport

T = TypeVar("T")

audit_app = typer.Typer(help="Check the ledger's tamper-evident audit trail.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens of the ledger API.", no_args_is_help=True)


def _with_db(work: Callable[[asyncpg.Connection, str], Awaitable[T]]) -> T:
    import asyncpg

    from ledger.migrate import migrate
    from ledger.settings import LedgerSettings
    from podium import environment
    from podium.core.settings import load_settings

    database = environment.database_settings()
    settings = load_settings(LedgerSettings)

    async def run() -> T:
        conn = await asyncpg.connect(database.url)
        try:
            await migrate(conn, settings.schema_name)
            await conn.execute(f'SET search_path TO "{settings.schema_name}", public')
            return await work(conn, settings.schema_name)
        finally:
            await conn.close()

    return asyncio.run(run())


def verify_command(
    task: Annotated[str | None, typer.Argument(help="Only this task's chain.")] = None,
    no_anchors: Annotated[
        bool,
        typer.Option(
            "--no-anchors", help="Skip the signed anchors in Kafka (rows and rollups only)."
        ),
    ] = False,
) -> None:
    """Check the ledger against its signed anchors in Kafka: name every rewritten, reordered or
    deleted row or task, and every rollup that disagrees with the events (exit 1 if any)."""
    from ledger.anchoring import read_anchors
    from ledger.audit import verify
    from ledger.settings import LedgerSettings
    from podium import environment
    from podium.core.settings import load_settings

    anchors = None
    if not no_anchors:
        public = environment.anchor_public_key(load_settings(LedgerSettings))
        kafka = environment.kafka_settings()
        anchors = asyncio.run(read_anchors(kafka, environment.topic_names(kafka), public))
    report: VerifyReport = _with_db(lambda conn, _schema: verify(conn, task, anchors))
    if task is not None and report.tasks == 0 and report.ok:
        err_console.print(f"task {task!r} has no events in the ledger")
        raise typer.Exit(2)
    for broken in report.breaks:
        err_console.print(f"[red]broken:[/red] {broken}")
    for problem in report.problems:
        err_console.print(f"[red]broken:[/red] {problem}")
    if not report.ok:
        err_console.print(
            f"{len(report.breaks) + len(report.problems)} problems in {report.tasks} chains"
        )
        raise typer.Exit(1)
    anchored = (
        f"; {report.anchored_tasks} against signed anchors up to global sequence "
        f"{report.high_water}"
        if report.high_water is not None
        else ""
    )
    console.print(f"ok: {report.tasks} chains, {report.events} events verified{anchored}")


def public_key_command() -> None:
    """Print the public key of the ledger's anchors (what `audit verify` checks them with)."""
    from ledger.anchors import public_hex
    from ledger.settings import LedgerSettings
    from podium import environment
    from podium.core.settings import load_settings

    typer.echo(public_hex(environment.anchor_public_key(load_settings(LedgerSettings))))


def token_create_command(
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            metavar="SCOPE",
            help="audit:read, spend:read, approvals:write or tasks:write (repeat for several).",
        ),
    ],
    name: Annotated[str, typer.Option("--name", help="Who holds it (shown as decided_by).")] = (
        "cli"
    ),
    save: Annotated[
        bool, typer.Option("--save", help="Also write it to .podium/api-token (mode 600).")
    ] = False,
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Valid for 30d, 12h, 2w... (else forever).")
    ] = None,
) -> None:
    """Create an API token; it is printed once and stored only as its SHA-256."""
    from ledger.auth import Scope, create_token
    from ledger.durations import parse_duration
    from podium import environment

    known = [str(s) for s in Scope]
    unknown = [s for s in scope if s not in known]
    if unknown:
        raise typer.BadParameter(
            f"{', '.join(map(repr, unknown))}: the scopes are {', '.join(known)}",
            param_hint="--scope",
        )
    scopes = [Scope(s) for s in scope]
    try:
        lifetime = None if expires_in is None else parse_duration(expires_in)
        if lifetime is not None and lifetime.total_seconds() <= 0:
            raise ValueError(f"{expires_in!r} is no time at all; a token must live a while")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--expires-in") from None
    token: str = _with_db(
        lambda conn, _schema: create_token(conn, name, scopes, expires_in=lifetime)
    )
    typer.echo(token)
    if save:
        err_console.print(f"ledger API token saved to {environment.save_api_token(token)}")


def token_list_command(output: OutputOption = OutputFormat.TABLE) -> None:
    """The API tokens (revoked and expired ones too); never the tokens themselves."""
    from ledger.auth import list_tokens

    tokens = [t.as_dict() for t in _with_db(lambda conn, _schema: list_tokens(conn))]
    rows = [
        {
            **{k: f"{v:%Y-%m-%d %H:%M:%S}" if isinstance(v, datetime) else v for k, v in t.items()},
            "scopes": ", ".join(t["scopes"]),
        }
        for t in tokens
    ]
    columns = ["id", "name", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at"]
    emit(tokens, output, rows=rows, columns=columns, title="API tokens (UTC)")


def token_revoke_command(
    token: Annotated[str, typer.Argument(help="The token's id, or its name if only one has it.")],
) -> None:
    """Revoke an API token: from now on it is a 401."""
    from ledger.auth import revoke_token

    info, newly = _with_db(lambda conn, _schema: revoke_token(conn, token))
    if newly:
        console.print(f"revoked token {info.id} ({info.name})")
    else:
        console.print(f"token {info.id} ({info.name}) was revoked already, at {info.revoked_at}")


def register(app: typer.Typer) -> None:
    audit_app.command("verify")(verify_command)
    audit_app.command("public-key")(public_key_command)
    token_app.command("create")(token_create_command)
    token_app.command("list")(token_list_command)
    token_app.command("revoke")(token_revoke_command)
    app.add_typer(audit_app, name="audit", rich_help_panel=ADMIN)
    app.add_typer(token_app, name="token", rich_help_panel=ADMIN)
