"""`podium pause|resume|throttle TARGET` and `podium controls`: operators' controls of agent
roles, systems and tools, in force on every policy replica within seconds, without a redeploy."""

from __future__ import annotations

import asyncio
import getpass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from podium.commands import TASKS
from podium.output import OutputFormat, console, emit

if TYPE_CHECKING:
    from topics.messages import Control

Output = Annotated[OutputFormat, typer.Option("--output", "-o", help="table, json or yaml")]
Target = Annotated[
    str, typer.Argument(help="What to control: agent/NAME, system/NAME or tool/NAME.")
]
Reason = Annotated[str, typer.Option("--reason", help="Why, recorded with the control.")]
By = Annotated[str | None, typer.Option("--by", help="Who sets it (default: the OS user name).")]
PerMinute = Annotated[
    int, typer.Option("--per-minute", min=1, max=1_000_000, help="Calls per minute to admit.")
]


def _control(target: str, state: str, *, reason: str, by: str | None, **fields: Any) -> Control:
    """The control record, validated as the policy service will read it."""
    import msgspec

    from topics.messages import Control

    try:
        return msgspec.convert(
            {
                "target": target,
                "state": state,
                "reason": reason,
                "set_by": by or getpass.getuser(),
                **fields,
            },
            type=Control,
        )
    except msgspec.ValidationError as exc:
        if "$.target" in str(exc):
            raise typer.BadParameter(
                f"{target!r} is not a target; write agent/NAME, system/NAME or tool/NAME "
                "(e.g. agent/writer)",
                param_hint="TARGET",
            ) from None
        raise typer.BadParameter(str(exc)) from None


def _publish(control: Control) -> None:
    from podium import environment
    from policy_service.control_topic import write_control

    kafka = environment.kafka_settings()
    asyncio.run(write_control(kafka, environment.topic_names(kafka), control))
    rate = f" to {control.per_minute} calls per minute" if control.per_minute else ""
    console.print(
        f"{control.target} [bold]{control.state}[/bold]{rate} by {control.set_by} at "
        f"{control.set_at.isoformat(timespec='seconds')}; every policy replica applies it "
        "within seconds"
    )


def pause_command(target: Target, reason: Reason = "", by: By = None) -> None:
    """Pause a target: the policy service denies its new model and tool calls."""
    _publish(_control(target, "paused", reason=reason, by=by))


def resume_command(target: Target, reason: Reason = "", by: By = None) -> None:
    """Resume a paused or throttled target."""
    _publish(_control(target, "resumed", reason=reason, by=by))


def throttle_command(
    target: Target, per_minute: PerMinute, reason: Reason = "", by: By = None
) -> None:
    """Cap a target's calls per minute (on each policy replica); calls over the rate are denied."""
    _publish(_control(target, "throttled", reason=reason, by=by, per_minute=per_minute))


def controls_command(output: Output = OutputFormat.TABLE) -> None:
    """List the targets that are paused or throttled now."""
    import msgspec

    from podium import environment
    from policy_service.control_topic import read_controls

    kafka = environment.kafka_settings()
    book = asyncio.run(read_controls(kafka, environment.topic_names(kafka)))
    entries = book.listing()
    if output is OutputFormat.TABLE and not entries:
        console.print("no target is paused or throttled")
        return
    rows = [
        {
            "target": e.control.target,
            "state": e.control.state,
            "per_minute": e.control.per_minute or "",
            "set_by": e.control.set_by,
            "set_at": e.control.set_at.isoformat(timespec="seconds"),
            "reason": e.control.reason,
        }
        for e in entries
    ]
    emit([msgspec.to_builtins(e.control) for e in entries], output, rows=rows, title="controls")


def register(app: typer.Typer) -> None:
    app.command("pause", rich_help_panel=TASKS)(pause_command)
    app.command("resume", rich_help_panel=TASKS)(resume_command)
    app.command("throttle", rich_help_panel=TASKS)(throttle_command)
    app.command("controls", rich_help_panel=TASKS)(controls_command)
