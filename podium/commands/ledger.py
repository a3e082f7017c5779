"""`podium ledger`, and the commands that read the ledger's HTTP API: logs, spend, trace
(`get task(s)` are in `podium.commands.tasks`).

The commands that work on the ledger's database directly (`audit`, `token`) are in
`podium.commands.audit`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.tree import Tree

from podium.commands import SERVICES, TASKS
from podium.output import OutputFormat, OutputOption, console, emit

if TYPE_CHECKING:
    from ledger.client import LedgerClient

T = TypeVar("T")


def _ledger_client() -> LedgerClient:
    from podium import environment

    return environment.ledger_client()


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
        environment.kafka_settings("ledger"),
        ingest=not api_only,
    )
    asyncio.run(run_services([service]))


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


def register(app: typer.Typer) -> None:
    app.command("ledger", rich_help_panel=SERVICES)(ledger_command)
    app.command("logs", rich_help_panel=TASKS)(logs_command)
    app.command("spend", rich_help_panel=TASKS)(spend_command)
    app.command("trace", rich_help_panel=TASKS)(trace_command)
