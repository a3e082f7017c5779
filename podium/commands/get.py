"""`podium get agents|systems|policies|endpoints|tools|roles|schedules|webhooks|... [NAME]`:
what is applied, read back from the manifests topic; schedules also show their last and next
slots, secrets only their keys (never a value, not even sealed). The ledger adds `get task(s)`
here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from podium.commands import MANIFESTS
from podium.output import OutputFormat, OutputOption, emit, err_console
from topics.names import TopicNames

if TYPE_CHECKING:
    from podium.core.settings import KafkaSettings
    from topics.messages import ManifestRecord

get_app = typer.Typer(help="Show applied resources, and tasks.", no_args_is_help=True)

NameArg = Annotated[str | None, typer.Argument(help="Show only this resource.")]

Row = dict[str, Any]


def _spec(record: ManifestRecord) -> dict[str, Any]:
    spec = record.resource.get("spec")
    return spec if isinstance(spec, dict) else {}


def _agent_row(record: ManifestRecord) -> Row:
    spec = _spec(record)
    model = spec.get("model")
    if isinstance(model, dict):
        model_text = f"{model.get('endpoint')}/{model.get('model') or '(default)'}"
    else:
        model_text = f"{spec.get('model_ref')}/(default)"
    tools = [t for t in spec.get("tools") or [] if t != "none"]
    limits = spec.get("limits") or {}
    return {
        "name": record.name,
        "model": model_text,
        "tools": ", ".join(map(str, tools)),
        "max_steps": limits.get("max_steps"),
        "timeout": limits.get("timeout"),
    }


def _system_row(record: ManifestRecord) -> Row:
    spec = _spec(record)
    labels = (record.resource.get("metadata") or {}).get("labels") or {}
    return {
        "name": record.name,
        "agents": ", ".join(map(str, spec.get("agents") or [])),
        "pattern": labels.get("orloj.dev/pattern", ""),
    }


def _policy_row(record: ManifestRecord) -> Row:
    spec = _spec(record)
    rules = {**spec, **(spec.get("rules") or {})}
    scope = spec.get("scope") or {}
    systems = [
        *(spec.get("target_systems") or []),
        *([scope["system"]] if scope.get("system") else []),
    ]
    return {
        "name": record.name,
        "systems": ", ".join(systems) or "(all)",
        "max_tokens": rules.get("max_tokens_per_task") or rules.get("max_tokens_per_run"),
        "max_cost_usd": rules.get("max_cost_per_task_usd"),
        "allowed_models": ", ".join(rules.get("allowed_models") or []),
        "denied_tools": ", ".join(
            [*(rules.get("denied_tools") or []), *(rules.get("blocked_tools") or [])]
        ),
    }


def _endpoint_row(record: ManifestRecord) -> Row:
    spec = _spec(record)
    return {
        "name": record.name,
        "provider": spec.get("provider"),
        "default_model": spec.get("default_model"),
        "base_url": spec.get("base_url"),
    }


def _tool_row(record: ManifestRecord) -> Row:
    spec = _spec(record)
    return {
        "name": record.name,
        "type": spec.get("type", "http"),
        "endpoint": spec.get("endpoint"),
        "risk_level": spec.get("risk_level", "low"),
    }


def _schedule_row(record: ManifestRecord) -> Row:
    spec = _spec(record)
    return {
        "name": record.name,
        "schedule": spec.get("schedule"),
        "time_zone": spec.get("time_zone", "UTC"),
        "task": spec.get("task_ref"),
        "policy": spec.get("concurrency_policy", "forbid"),
        "suspend": bool(spec.get("suspend", False)),
    }


def _fire_times(kafka: KafkaSettings, found: list[ManifestRecord]) -> dict[str, Row]:
    """Per schedule: the last slot fired and when, the active runs, and the next slot."""
    from manifests.models import TaskSchedule
    from scheduler.status import next_slot, read_states

    states = asyncio.run(read_states(kafka, TopicNames(kafka.topic_prefix)))
    out: dict[str, Row] = {}
    for record in found:
        state = states.get(record.name)
        schedule = TaskSchedule.model_validate(record.resource)
        upcoming = next_slot(schedule, state)
        fired = state.last_fired_at if state else None
        out[record.name] = {
            "last_slot": state.last_slot.isoformat() if state and state.last_slot else "",
            "last_fired_at": fired.isoformat(timespec="seconds") if fired else "",
            "last_task": state.last_task_id if state else "",
            "active": len(state.active) if state else 0,
            "next_slot": upcoming.isoformat() if upcoming else "(suspended)",
        }
    return out


def _sealed_values(record: ManifestRecord) -> dict[str, Any]:
    sealed = _spec(record).get("sealedData")
    return sealed if isinstance(sealed, dict) else {}


def _secret_row(record: ManifestRecord) -> Row:
    """Names and keys, and the key id each value is sealed to; never a value."""
    sealed = _sealed_values(record)
    sealed_to = sorted({str(v).split(":")[2] for v in sealed.values() if str(v).count(":") == 3})
    return {
        "name": record.name,
        "keys": ", ".join(sorted(sealed)),
        "sealed_to": ", ".join(sealed_to),
    }


def _without_values(record: ManifestRecord) -> dict[str, Any]:
    """A Secret's document with every sealed value cut to the key id it is sealed to."""
    sealed = {
        key: ":".join(str(value).split(":")[:3]) + ":..."
        for key, value in _sealed_values(record).items()
    }
    return {**record.resource, "spec": {"sealedData": sealed}}


def _webhook_row(record: ManifestRecord) -> Row:
    spec = _spec(record)
    auth = spec.get("auth") or {}
    return {
        "name": record.name,
        "task": spec.get("task_ref"),
        "profile": auth.get("profile", "generic"),
        "endpoint": f"POST /v1/webhook-deliveries/{record.name}",
        "suspend": bool(spec.get("suspend", False)),
    }


def _memory_row(record: ManifestRecord) -> Row:
    spec = _spec(record)
    return {
        "name": record.name,
        "provider": spec.get("provider") or "in-memory",
        "embedding_model": spec.get("embedding_model", ""),
    }


def _plain_row(record: ManifestRecord) -> Row:
    return {"name": record.name}


KINDS: dict[str, tuple[str, Callable[[ManifestRecord], Row]]] = {
    "agents": ("Agent", _agent_row),
    "systems": ("AgentSystem", _system_row),
    "policies": ("AgentPolicy", _policy_row),
    "endpoints": ("ModelEndpoint", _endpoint_row),
    "tools": ("Tool", _tool_row),
    "roles": ("AgentRole", _plain_row),
    "toolpermissions": ("ToolPermission", _plain_row),
    "mcpservers": ("McpServer", _plain_row),
    "memories": ("Memory", _memory_row),
    "templates": ("Task", _plain_row),
    "schedules": ("TaskSchedule", _schedule_row),
    "secrets": ("Secret", _secret_row),
    "webhooks": ("TaskWebhook", _webhook_row),
    "routes": ("RoutingTable", _plain_row),
}


def show(plural: str, name: str | None, output: OutputFormat) -> None:
    from manifests.apply import read_screened
    from podium import environment

    kind, row_of = KINDS[plural]
    kafka = environment.kafka_settings()
    # What the services use: a record they skip is logged, not shown.
    _, screened = asyncio.run(read_screened(kafka, TopicNames(kafka.topic_prefix)))
    records = {key: version.record for key, version in screened.chosen.items()}
    found = sorted(
        (r for r in records.values() if r.kind == kind and (name is None or r.name == name)),
        key=lambda r: r.name,
    )
    if name is not None and not found:
        err_console.print(f"{kind}/{name} is not applied", highlight=False)
        raise typer.Exit(1)
    if not found and output is OutputFormat.TABLE:
        err_console.print(f"No {kind} is applied (prefix {kafka.topic_prefix!r}).", highlight=False)
        return
    value = [_record_json(r) for r in found]
    times = _fire_times(kafka, found) if kind == "TaskSchedule" else {}
    for item in value:
        if item["name"] in times:
            item["status"] = times[item["name"]]
    rows = [
        {
            **row_of(r),
            **times.get(r.name, {}),
            "generation": r.generation,
            "applied_at": r.applied_at.isoformat(timespec="seconds"),
        }
        for r in found
    ]
    emit(value[0] if name is not None else value, output, rows=rows, title=None)


def _record_json(record: ManifestRecord) -> dict[str, Any]:
    return {
        "kind": record.kind,
        "name": record.name,
        "generation": record.generation,
        "digest": record.digest,
        "source": record.source,
        "applied_at": record.applied_at.isoformat(),
        "resource": _without_values(record) if record.kind == "Secret" else record.resource,
    }


def _command(plural: str) -> Callable[..., None]:
    kind = KINDS[plural][0]

    def command(name: NameArg = None, output: OutputOption = OutputFormat.TABLE) -> None:
        show(plural, name, output)

    command.__doc__ = f"Show the applied {kind} resources (or one, by NAME)."
    return command


for _plural in KINDS:
    get_app.command(_plural)(_command(_plural))


def register(app: typer.Typer) -> None:
    app.add_typer(get_app, name="get", rich_help_panel=MANIFESTS)
