"""`podium ledger`, and the commands over the ledger: logs, spend, trace, audit, token, get task.

`podium ledger` runs the service; `audit verify` and `token ...` talk to PostgreSQL directly
(an auditor recomputes the chains from the rows themselves, and checks them against the signed
anchors on Kafka); the rest use the HTTP API.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.tree import Tree

from podium.commands import ADMIN, SERVICES, TASKS
from podium.output import OutputFormat, console, emit, err_console

if TYPE_CHECKING:
    import asyncpg

    from ledger.audit import VerifyReport
    from ledger.client import LedgerClient

T = TypeVar("T")

OutputOption = Annotated[
    OutputFormat, typer.Option("--output-format", "-o", help="table, json or yaml")
]

audit_app = typer.Typer(help="Check the ledger's tamper-evident audit trail.", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens of the ledger API.", no_args_is_help=True)


def _ledger_client() -> LedgerClient:
    from podium import environment

    return environment.ledger_client()


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


def ledger_command(
    api_only: Annotated[
        bool, typer.Option("--api-only", help="Serve the API without consuming events.")
    ] = False,
) -> None:
    """Run the ledger: store every event in PostgreSQL and serve the HTTP API."""
    from ledger.settings import LedgerSettings
    from podium import composition, environment
    from podium.core import tracing
    from podium.core.lifecycle import run_services
    from podium.core.logs import configure_logging
    from podium.core.settings import load_settings

    configure_logging()
    tracing.configure_from_env("podium-ledger")
    service = composition.ledger_service(
        load_settings(LedgerSettings),
        environment.database_settings(),
        environment.kafka_settings(),
        ingest=not api_only,
    )
    asyncio.run(run_services([service]))


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
            help="audit:read, spend:read or approvals:write (repeat for several).",
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


def logs_command(task: str, output: OutputOption = OutputFormat.TABLE) -> None:
    """A task's audit trail: every event in order."""
    with _ledger_client() as client:
        events = client.pages(f"/v1/tasks/{task}/events", limit=1000)
    rows = [_log_row(ev) for ev in events]
    emit(
        events,
        output,
        rows=rows,
        columns=["time", "agent", "event", "model/tool", "tokens", "cost", "decision"],
        title=f"task {task}" + (f" ({events[0]['at'][:10]}, UTC)" if events else ""),
    )


def _log_row(ev: dict[str, Any]) -> dict[str, Any]:
    data = ev.get("data") or {}
    tokens = None
    cost: Any = None
    if ev["type"] == "model.called":
        tokens = int(data.get("input_tokens", 0)) + int(data.get("output_tokens", 0))
        cost = "unknown" if data.get("cost_usd") is None else f"${data['cost_usd']:.6f}"
    decision = data.get("decision") or data.get("status") if ev["type"] != "model.called" else ""
    if ev["type"].startswith("approval."):
        decision = ev["type"].removeprefix("approval.")
    return {
        "time": _clock(ev["at"]),
        "agent": ev.get("agent", ""),
        "event": ev["type"],
        "model/tool": data.get("model") or data.get("tool") or "",
        "tokens": tokens,
        "cost": cost,
        "decision": decision or "",
    }


def spend_command(
    by: Annotated[str, typer.Option("--by", help="system, agent, model, task or day")] = "system",
    since: Annotated[str | None, typer.Option(help="RFC 3339 time, or 24h / 7d back")] = None,
    until: Annotated[str | None, typer.Option(help="RFC 3339 time, or 24h / 7d back")] = None,
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    task: Annotated[str | None, typer.Option(help="Only this task.")] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Tokens and USD of model calls, grouped; calls without a known price are counted apart."""
    with _ledger_client() as client:
        result = client.all_pages(
            "/v1/spend",
            "groups",
            group_by=by,
            since=since,
            until=until,
            system=system,
            task=task,
            limit=1000,
        )
    rows = [
        {
            by: g["key"],
            "calls": g["calls"],
            "tokens": g["total_tokens"],
            "cost_usd": f"{g['cost_usd']:.6f}",
            "unpriced calls": g["unpriced_calls"],
        }
        for g in result["groups"]
    ]
    total = result["total"]
    rows.append(
        {
            by: "total",
            "calls": total["calls"],
            "tokens": total["total_tokens"],
            "cost_usd": f"{total['cost_usd']:.6f}",
            "unpriced calls": total["unpriced_calls"],
        }
    )
    title = f"spend by {by}" + (f" of task {task}" if task else "")
    emit(result, output, rows=rows, title=title)


def trace_command(task: str) -> None:
    """A task's steps as a tree, with timings, tokens and cost."""
    with _ledger_client() as client:
        events = client.pages(f"/v1/tasks/{task}/events", limit=1000)
    console.print(build_trace(task, events))


def build_trace(task: str, events: list[dict[str, Any]]) -> Tree:
    root = Tree(f"[bold]task {task}[/bold]")
    steps: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for ev in events:
        step_id = ev.get("step_id") or ""
        if not step_id:
            root.add(f"{_clock(ev['at'])} {ev['type']}")
            continue
        step = steps.get(step_id)
        if step is None:
            step = steps[step_id] = {
                "agent": ev.get("agent", ""),
                "start": ev["at"],
                "end": ev["at"],
                "tokens": 0,
                "cost": 0.0,
                "unpriced": 0,
                "status": "running",
                "children": [],
            }
            order.append(step_id)
        step["end"] = ev["at"]
        data = ev.get("data") or {}
        if ev["type"] == "model.called":
            tokens = int(data.get("input_tokens", 0)) + int(data.get("output_tokens", 0))
            step["tokens"] += tokens
            if data.get("cost_usd") is None:
                step["unpriced"] += 1
                cost = "price unknown"
            else:
                step["cost"] += float(data["cost_usd"])
                cost = f"${data['cost_usd']:.6f}"
            step["children"].append(
                f"model {data.get('model', '?')}: {tokens} tokens, {cost}, "
                f"{data.get('latency_ms', 0):.0f} ms"
            )
        elif ev["type"] == "tool.called":
            step["children"].append(
                f"tool {data.get('tool', '?')}: {data.get('status', '?')}, "
                f"{data.get('latency_ms', 0):.0f} ms"
            )
        elif ev["type"] == "policy.decided":
            step["children"].append(
                f"policy {data.get('decision', '?')} {data.get('model') or data.get('tool') or ''}"
                f" ({data.get('rule', '')})"
            )
        elif ev["type"] in ("step.completed", "step.failed"):
            step["status"] = ev["type"].removeprefix("step.")
        elif ev["type"] != "step.started":
            step["children"].append(ev["type"])
    for step_id in order:
        step = steps[step_id]
        seconds = (_parse(step["end"]) - _parse(step["start"])).total_seconds()
        unpriced = f" + {step['unpriced']} unpriced" if step["unpriced"] else ""
        branch = root.add(
            f"[bold]{step['agent']}[/bold] {step_id} {step['status']} {seconds:.2f} s, "
            f"{step['tokens']} tokens, ${step['cost']:.6f}{unpriced}"
        )
        for child in step["children"]:
            branch.add(child)
    return root


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _clock(value: str) -> str:
    return _parse(value).strftime("%H:%M:%S.%f")[:-3]


def get_task_command(
    task_id: str,
    output_only: Annotated[bool, typer.Option("--output", help="Print only the output.")] = False,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """One task from the ledger: status, times, tokens, cost (and output)."""
    with _ledger_client() as client:
        task = client.get(f"/v1/tasks/{task_id}")
    if output_only:
        typer.echo(task.get("output") or "")
        return
    emit(task, output)


def get_tasks_command(
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    status: Annotated[str | None, typer.Option(help="requested, running, succeeded, failed")] = (
        None
    ),
    since: Annotated[str | None, typer.Option(help="RFC 3339 time, or 24h / 7d back")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Tasks in the ledger, newest first."""
    with _ledger_client() as client:
        page = client.get("/v1/tasks", system=system, status=status, since=since, limit=limit)
    items = page["items"]
    emit(
        items,
        output,
        rows=items,
        columns=["task_id", "system", "status", "created_at", "total_tokens", "cost_usd"],
    )


def register(app: typer.Typer) -> None:
    app.command("ledger", rich_help_panel=SERVICES)(ledger_command)
    app.command("logs", rich_help_panel=TASKS)(logs_command)
    app.command("spend", rich_help_panel=TASKS)(spend_command)
    app.command("trace", rich_help_panel=TASKS)(trace_command)
    audit_app.command("verify")(verify_command)
    audit_app.command("public-key")(public_key_command)
    token_app.command("create")(token_create_command)
    token_app.command("list")(token_list_command)
    token_app.command("revoke")(token_revoke_command)
    app.add_typer(audit_app, name="audit", rich_help_panel=ADMIN)
    app.add_typer(token_app, name="token", rich_help_panel=ADMIN)
    try:
        get_app: typer.Typer = importlib.import_module("podium.commands.get").get_app
    except (ImportError, AttributeError):
        # `podium get` belongs to the manifests commands; until they exist, hold our own group.
        get_app = typer.Typer(help="Show resources.", no_args_is_help=True)
        app.add_typer(get_app, name="get")
    get_app.command("task")(get_task_command)
    get_app.command("tasks")(get_tasks_command)
