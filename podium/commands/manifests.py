"""`podium validate | compile | apply -f PATH...`: check, compile and publish manifests;
`podium delete KIND/NAME... | -f PATH...`: remove applied ones."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer
from rich.markup import escape

from podium.commands import MANIFESTS
from podium.output import OutputFormat, console, emit, err_console
from topics.names import TopicNames

if TYPE_CHECKING:
    from manifests.catalog import Catalog
    from manifests.errors import ManifestError
    from topics.routing import RoutingTable

EXIT_INVALID = 1

Files = Annotated[
    list[Path],
    typer.Option("-f", "--file", help="A manifest file or a folder of *.yaml (repeatable)."),
]
Output = Annotated[OutputFormat, typer.Option("-o", "--output", help="table, json or yaml")]
Prefix = Annotated[
    str | None,
    typer.Option("--prefix", help="Topic prefix (default: PODIUM_KAFKA_TOPIC_PREFIX or podium)."),
]


def report_errors(errors: Sequence[ManifestError]) -> None:
    for error in errors:
        err_console.print(escape(str(error)), soft_wrap=True, highlight=False)
    noun = "problem" if len(errors) == 1 else "problems"
    err_console.print(f"[red]{len(errors)} {noun}[/red]", highlight=False)


def report_notes(catalog: Catalog) -> None:
    """What the manifests ask that Podium does not do (`manifests.task_checks`)."""
    from manifests.task_checks import task_notes

    for note in task_notes(catalog):
        err_console.print(f"note: {escape(note)}", soft_wrap=True, highlight=False)


def validate_command(files: Files) -> None:
    """Check manifests: fields, references and graphs. Exit code 1 on any problem."""
    from manifests.loader import load_paths

    result = load_paths(files)
    if result.errors:
        report_errors(result.errors)
        raise typer.Exit(EXIT_INVALID)
    catalog = result.catalog
    assert catalog is not None
    kinds: dict[str, int] = {}
    for resource in catalog.resources():
        kinds[resource.kind_name] = kinds.get(resource.kind_name, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    console.print(f"valid: {summary or 'no resources'}", highlight=False)
    report_notes(catalog)


def compiled(catalog: Catalog) -> dict[str, Any]:
    """The JSON of `podium compile -o json`."""
    from manifests.catalog import required_topics

    systems = {name: _table_json(table) for name, table in catalog.routing.items()}
    agents = sorted({a for t in catalog.routing.values() for a in t.nodes})
    return {"systems": systems, "topics": required_topics(catalog.names, agents)}


def _table_json(table: RoutingTable) -> dict[str, Any]:
    value: dict[str, Any] = msgspec.to_builtins(table, order="deterministic")
    value.pop("system", None)
    for node in value["nodes"].values():
        node.pop("agent", None)
    return value


def compile_rows(catalog: Catalog) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, table in catalog.routing.items():
        for agent, node in table.nodes.items():
            edges = ", ".join(
                f"{e.to} ({e.kind}{', when ' + e.when if e.when else ''})" for e in node.edges
            )
            loop = []
            if node.exit_when:
                loop.append(f"exit_when {node.exit_when}")
            if node.max_iterations:
                loop.append(f"max {node.max_iterations}")
            rows.append(
                {
                    "system": name,
                    "agent": agent + (" (entry)" if agent in table.entry else ""),
                    "edges": edges or "-",
                    "join": ", ".join(node.join.inputs) if node.join else "",
                    "loop": ", ".join(loop),
                    "topic": node.topic,
                }
            )
    return rows


def _names(prefix: str | None) -> TopicNames:
    return TopicNames(prefix or os.environ.get("PODIUM_KAFKA_TOPIC_PREFIX") or "podium")


def compile_command(
    files: Files, output: Output = OutputFormat.TABLE, prefix: Prefix = None
) -> None:
    """Print the routing tables compiled from the systems' graphs."""
    from manifests.loader import load_paths

    result = load_paths(files, _names(prefix))
    if result.errors:
        report_errors(result.errors)
        raise typer.Exit(EXIT_INVALID)
    assert result.catalog is not None
    emit(
        compiled(result.catalog),
        output,
        rows=compile_rows(result.catalog),
        columns=["system", "agent", "edges", "join", "loop", "topic"],
        title="routing tables",
    )


def apply_command(files: Files, output: Output = OutputFormat.TABLE) -> None:
    """Validate, compile, create the topics and publish to the manifests topic (all or nothing)."""
    from manifests.apply import apply_paths
    from podium import environment

    kafka = environment.kafka_settings()
    names = TopicNames(kafka.topic_prefix)
    sealing_key = environment.sealing_public_key(kafka)
    report = asyncio.run(apply_paths(kafka, names, files, sealing_key=sealing_key))
    if report.errors:
        report_errors(report.errors)
        err_console.print("nothing was applied", highlight=False)
        raise typer.Exit(EXIT_INVALID)
    for note in report.notes:
        err_console.print(f"note: {escape(note)}", soft_wrap=True, highlight=False)
    value = {
        "changed": report.changed,
        "unchanged": report.unchanged,
        "created_topics": report.created_topics,
    }
    if output is not OutputFormat.TABLE:
        emit(value, output)
        return
    if report.no_change:
        console.print(f"no change ({len(report.unchanged)} resources up to date)", highlight=False)
        return
    for key, generation in report.changed.items():
        state = "created" if generation == 1 else f"configured (generation {generation})"
        console.print(f"{key} {state}", highlight=False)
    if report.unchanged:
        console.print(f"{len(report.unchanged)} unchanged", highlight=False)
    if report.created_topics:
        console.print(f"{len(report.created_topics)} topics created", highlight=False)


Targets = Annotated[
    list[str] | None,
    typer.Argument(
        help="Resources to delete, as KIND/NAME (e.g. Agent/writer).", show_default=False
    ),
]
DeleteFiles = Annotated[
    list[Path] | None,
    typer.Option("-f", "--file", help="Delete every resource of this file or folder (repeatable)."),
]


DELETE_HELP = "\n\n".join(
    " ".join(paragraph.split())
    for paragraph in (
        """Delete applied resources: `podium delete Agent/writer`, or every resource of
        `-f FILE`.""",
        """Each deletion is a tombstone on the manifests topic, and the routing tables are
        compiled again from what stays (a deleted AgentSystem's table goes with it), in one
        transaction; running services drop what is deleted.""",
        """Refused, with nothing deleted, when a resource that stays still refers to one being
        deleted (an AgentSystem naming the agent, an Agent naming the tool or model endpoint, a
        TaskSchedule naming the task...): the referrers are listed. Delete them in the same
        call. Exit code 1 when refused or when a resource is not applied.""",
    )
)


def delete_command(
    targets: Targets = None, files: DeleteFiles = None, output: Output = OutputFormat.TABLE
) -> None:
    """Delete applied resources (see DELETE_HELP)."""
    from manifests.delete import delete_keys, keys_of_files, parse_target
    from podium import environment

    if not targets and not files:
        raise typer.BadParameter("name resources as KIND/NAME, or give -f FILE")
    keys: list[str] = []
    for text in targets or []:
        key = parse_target(text)
        if key is None:
            raise typer.BadParameter(f"{text!r} is not KIND/NAME (e.g. Agent/writer)")
        keys.append(key)
    if files:
        from_files, errors = keys_of_files(files)
        if errors:
            report_errors(errors)
            err_console.print("nothing was deleted", highlight=False)
            raise typer.Exit(EXIT_INVALID)
        keys += from_files
    kafka = environment.kafka_settings()
    report = asyncio.run(delete_keys(kafka, TopicNames(kafka.topic_prefix), keys))
    if report.errors:
        for error in report.errors:
            err_console.print(escape(error), soft_wrap=True, highlight=False)
        err_console.print("nothing was deleted", highlight=False)
        raise typer.Exit(EXIT_INVALID)
    if output is not OutputFormat.TABLE:
        emit({"deleted": report.deleted, "republished": report.republished}, output)
        return
    for key in report.deleted:
        console.print(f"{key} deleted", highlight=False)
    for key, generation in report.republished.items():
        console.print(f"{key} configured (generation {generation})", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("validate", rich_help_panel=MANIFESTS)(validate_command)
    app.command("compile", rich_help_panel=MANIFESTS)(compile_command)
    app.command("apply", rich_help_panel=MANIFESTS)(apply_command)
    app.command("delete", help=DELETE_HELP, rich_help_panel=MANIFESTS)(delete_command)
