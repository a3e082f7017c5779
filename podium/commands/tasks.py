"""`podium get tasks` and `podium get task NAME`: applied Tasks and the ledger's tasks, with
Orloj's phases (Pending, Running, WaitingApproval, Succeeded, Failed, DeadLetter).

An applied Task (mode run) is shown by name, with its attempts from the scheduler's state and
its current attempt as the ledger sees it; any other task (`podium run`, a schedule's slot, a
webhook's delivery) by its task id, from the ledger.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any

import typer

from podium.commands.get import get_app
from podium.output import OutputFormat, OutputOption, emit, err_console
from topics.names import TopicNames

if TYPE_CHECKING:
    from ledger.client import LedgerClient
    from manifests.models import Task
    from scheduler.runs import RunState

Row = dict[str, Any]
COLUMNS = [
    "name",
    "system",
    "priority",
    "phase",
    "attempts",
    "task_id",
    "created_at",
    "total_tokens",
    "cost_usd",
    "last_error",
]


def _applied_tasks() -> tuple[dict[str, Task], dict[str, RunState]]:
    """The applied Tasks of mode run, and the scheduler's state of each."""
    from manifests.apply import read_screened
    from manifests.models import Task
    from podium import environment
    from scheduler.status import read_runs

    kafka = environment.kafka_settings()
    names = TopicNames(kafka.topic_prefix)

    async def read() -> tuple[dict[str, Task], dict[str, RunState]]:
        _, screened = await read_screened(kafka, names)
        tasks = {}
        for version in screened.chosen.values():
            record = version.record
            if record.kind == "Task":
                task = Task.model_validate(record.resource)
                if task.spec.mode == "run":
                    tasks[task.name] = task
        return tasks, await read_runs(kafka, names)

    return asyncio.run(read())


def _ledger_task(client: LedgerClient, task_id: str) -> dict[str, Any] | None:
    from podium.core.errors import PermanentError

    try:
        found: dict[str, Any] = client.get(f"/v1/tasks/{task_id}")
    except PermanentError as exc:
        if "404" in str(exc):
            return None
        raise
    return found


def _waiting(client: LedgerClient) -> set[str]:
    """The tasks with an approval pending."""
    return {a["task_id"] for a in client.pages("/v1/approvals", status="pending", limit=500)}


def _task_view(
    client: LedgerClient, task: Task, run: RunState | None, waiting: set[str]
) -> dict[str, Any]:
    from scheduler.settings import SchedulerSettings
    from scheduler.status import task_phase

    attempts = run.attempts if run else []
    current = _ledger_task(client, attempts[-1].task_id) if attempts else None
    phase = task_phase(
        task,
        run,
        current,
        waiting=bool(attempts) and attempts[-1].task_id in waiting,
        timeout_s=SchedulerSettings().task_timeout_s,
    )
    done = phase in ("Succeeded", "Failed", "DeadLetter")
    return {
        "name": task.name,
        "system": task.spec.system,
        "priority": task.spec.priority,
        "phase": phase,
        "attempts": len(attempts),
        "max_attempts": task.spec.retry.max_attempts,
        "task_id": attempts[-1].task_id if attempts else "",
        "next_attempt_at": run.next_attempt_at.isoformat()
        if run and run.next_attempt_at and not done
        else "",
        "last_error": (current or {}).get("error") or (run.last_error if run else ""),
        "output": (current or {}).get("output") if phase == "Succeeded" else None,
        "created_at": (current or {}).get("created_at", ""),
        "total_tokens": (current or {}).get("total_tokens", ""),
        "cost_usd": (current or {}).get("cost_usd", ""),
        "attempt_history": [
            {
                "attempt": a.number,
                "task_id": a.task_id,
                "submitted_at": a.submitted_at.isoformat(),
                "status": a.status,
                "finished_at": a.finished_at.isoformat() if a.finished_at else "",
                "error": a.error,
            }
            for a in attempts
        ],
    }


def get_task_command(
    name: Annotated[str, typer.Argument(help="An applied Task's name, or a task id.")],
    output_only: Annotated[
        bool, typer.Option("--output-only", help="Print only the output.")
    ] = False,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """One task: an applied Task with its phase and attempts, or a task of the ledger."""
    from podium import environment
    from scheduler.status import ledger_phase

    tasks, runs = _applied_tasks()
    with environment.ledger_client() as client:
        waiting = _waiting(client)
        if name in tasks:
            value = _task_view(client, tasks[name], runs.get(name), waiting)
        else:
            found = _ledger_task(client, name)
            if found is None:
                err_console.print(f"task {name!r} is neither applied nor in the ledger")
                raise typer.Exit(1)
            value = {**found, "phase": ledger_phase(found.get("status"), name in waiting)}
    if output_only:
        typer.echo(value.get("output") or "")
        return
    emit(value, output)


def get_tasks_command(
    system: Annotated[str | None, typer.Option(help="Only this system.")] = None,
    phase: Annotated[
        str | None,
        typer.Option(help="Pending, Running, WaitingApproval, Succeeded, Failed or DeadLetter"),
    ] = None,
    since: Annotated[str | None, typer.Option(help="RFC 3339 time, or 24h / 7d back")] = None,
    limit: Annotated[int, typer.Option(help="How many of the ledger's, newest first.")] = 50,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """The applied Tasks, then the ledger's other tasks (newest first), with their phases."""
    from podium import environment
    from scheduler.status import ledger_phase

    tasks, runs = _applied_tasks()
    rows: list[Row] = []
    with environment.ledger_client() as client:
        waiting = _waiting(client)
        attempt_ids: set[str] = set()
        for name in sorted(tasks):
            if system is None or tasks[name].spec.system == system:
                view = _task_view(client, tasks[name], runs.get(name), waiting)
                rows.append(view)
            attempt_ids |= {a.task_id for a in runs[name].attempts} if name in runs else set()
        page = client.get("/v1/tasks", system=system, since=since, limit=limit)
    for item in page["items"]:
        if item["task_id"] in attempt_ids:
            continue
        rows.append(
            {
                **item,
                "name": item["task_id"],
                "priority": "",
                "phase": ledger_phase(item.get("status"), item["task_id"] in waiting),
                "attempts": 1,
                "last_error": item.get("error") or "",
            }
        )
    if phase is not None:
        rows = [r for r in rows if r["phase"].lower() == phase.lower()]
    emit(rows, output, rows=rows, columns=COLUMNS)


def register(app: typer.Typer) -> None:
    get_app.command("task")(get_task_command)
    get_app.command("tasks")(get_tasks_command)
