"""`podium memory-entries MEMORY [--query Q] [--prefix P] [--limit N]`: an applied Memory's
entries, read from its store as an actor reads it (the actors' settings: the memory database,
the sealing key that opens the Memory's Secret). In-memory entries live inside each actor
process and cannot be read from here."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from podium.commands import TASKS
from podium.output import OutputFormat, OutputOption, emit, err_console

MemoryArg = Annotated[str, typer.Argument(help="The Memory's name.")]
Query = Annotated[str | None, typer.Option("--query", "-q", help="Search (as memory.search does).")]
Prefix = Annotated[str, typer.Option("--prefix", help="Only keys starting with this.")]
Limit = Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many.")]


async def _entries(name: str, query: str | None, prefix: str, limit: int) -> list[dict[str, Any]]:
    from actors.memory.stores import MemoryConfig, MemoryStores
    from actors.settings import ActorSettings
    from manifests.apply import read_screened
    from podium import environment
    from podium.core.settings import load_settings
    from topics.names import TopicNames

    kafka = environment.kafka_settings()
    _, screened = await read_screened(kafka, TopicNames(kafka.topic_prefix))
    catalog = screened.catalog
    memory = catalog.memories.get(name)
    if memory is None:
        known = ", ".join(catalog.memories) or "none"
        raise typer.BadParameter(f"Memory/{name} is not applied (applied: {known})")
    if memory.spec.provider == "in-memory":
        raise typer.BadParameter(
            f"Memory/{name} is in-memory: its entries live in each actor process only"
        )
    settings = load_settings(ActorSettings)
    stores = MemoryStores(
        MemoryConfig(
            database_url=environment.actor_memory_database_url(settings, kafka),
            schema=settings.memory_schema,
            sealing_key=environment.actor_sealing_key(settings, kafka),
            allowed_secret_env=settings.allowed_secret_env,
        )
    )
    try:
        store = stores.store_for(catalog, memory)
        if query is not None:
            found = await store.search(query, limit)
        else:
            found = await store.list(prefix, limit)
        if query is not None and prefix:
            found = [e for e in found if e.key.startswith(prefix)]
    finally:
        await stores.aclose()
    return [
        {
            "key": e.key,
            "value": e.value,
            "score": None if e.score is None else round(e.score, 6),
            "metadata": e.metadata,
            "updated_at": e.updated_at.isoformat(timespec="seconds") if e.updated_at else None,
        }
        for e in found
    ]


def memory_entries_command(
    memory: MemoryArg,
    query: Query = None,
    prefix: Prefix = "",
    limit: Limit = 20,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Show a Memory's entries: listed by key, or searched with --query."""
    entries = asyncio.run(_entries(memory, query, prefix, limit))
    if not entries and output is OutputFormat.TABLE:
        err_console.print(f"Memory/{memory} has no entries that match.", highlight=False)
        return
    rows = [
        {
            "key": e["key"],
            "value": e["value"] if len(e["value"]) <= 80 else e["value"][:77] + "...",
            "score": "" if e["score"] is None else f"{e['score']:.3f}",
            "agent": e["metadata"].get("agent", ""),
            "updated_at": e["updated_at"] or "",
        }
        for e in entries
    ]
    emit(entries, output, rows=rows, title=None)


def register(app: typer.Typer) -> None:
    app.command("memory-entries", rich_help_panel=TASKS)(memory_entries_command)
