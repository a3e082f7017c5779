"""`podium run SYSTEM --input TEXT [--task-id ID] [--wait] [--timeout S] [-o json]`."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer

from podium.commands import TASKS
from podium.output import OutputFormat, console, dump_json, err_console
from topics.codec import MalformedMessage, decode, encode, headers_for
from topics.messages import AnyResult, Event, TaskCompleted, TaskRequested, utcnow
from topics.names import TopicNames

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer

    from podium.core.settings import KafkaSettings

EXIT_FAILED = 1
EXIT_TIMEOUT = 3


@dataclass(slots=True)
class Outcome:
    task_id: str
    result: AnyResult | None = None
    events: list[Event] = field(default_factory=list)


async def _tail_consumer(kafka: KafkaSettings, topics: list[str]) -> AIOKafkaConsumer:
    """A group-less consumer positioned at the END of every partition of `topics`."""
    from aiokafka import TopicPartition

    from topics.kafka import make_consumer

    consumer = make_consumer(kafka, group_id=None, fetch_max_wait_ms=100)
    try:
        await consumer.start()
        partitions: list[TopicPartition] = []
        for topic in topics:
            known = consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
            for p in sorted(known):
                partitions.append(TopicPartition(topic, p))
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)  # resolve the end offsets now, before the task is sent
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    found: set[int] | None = consumer.partitions_for_topic(topic)
    if not found:
        raise typer.BadParameter(f"topic {topic} does not exist: is the stack up and applied?")
    return found


async def submit_and_wait(
    kafka: KafkaSettings,
    task: TaskRequested,
    *,
    wait: bool,
    timeout_s: float,
    on_event: Any = None,
) -> Outcome:
    from podium.core import tracing
    from topics.kafka import make_producer

    names = TopicNames(kafka.topic_prefix)
    outcome = Outcome(task_id=task.task_id)
    consumer = await _tail_consumer(kafka, [names.events, names.results]) if wait else None
    try:
        producer = make_producer(kafka)
        try:
            await producer.start()
            async with tracing.span("podium run", attributes={"podium.task_id": task.task_id}):
                await producer.send_and_wait(
                    names.tasks,
                    key=task.task_id.encode(),
                    value=encode(task),
                    headers=headers_for(task, tracing.trace_headers()),
                )
        finally:
            await producer.stop()
        if consumer is None:
            return outcome
        deadline = time.monotonic() + timeout_s
        while outcome.result is None and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    if record.key != task.task_id.encode():
                        continue
                    try:
                        if tp.topic == names.results:
                            outcome.result = decode(record.value, AnyResult)
                        else:
                            ev: Event = decode(record.value, Event)
                            outcome.events.append(ev)
                            if on_event is not None:
                                on_event(ev)
                    except MalformedMessage:
                        continue
        return outcome
    finally:
        if consumer is not None:
            await consumer.stop()


def _describe(ev: Event) -> str | None:
    data = ev.data
    if ev.type == "task.started":
        return f"task started → {', '.join(data.get('entry', []))}"
    if ev.type == "step.completed":
        nxt = ", ".join(data.get("next", [])) or "end"
        extra = f" (loop exit: {data['loop_exit']})" if data.get("loop_exit") else ""
        outcome = f", outcome {data['outcome']}" if data.get("outcome") else ""
        return f"[green]✓ {ev.agent}[/green] done{outcome} → {nxt}{extra}"
    if ev.type == "step.failed":
        return f"[red]✗ {ev.agent}[/red] failed: {data.get('error', '')}"
    if ev.type == "model.called":
        # The provider says where the call went: `mock` in the offline demo, whatever the model.
        via = f"{data['provider']}, " if data.get("provider") else ""
        return (
            f"  {ev.agent}: model {data.get('model')} "
            f"({via}{data.get('input_tokens', 0)}+{data.get('output_tokens', 0)} tokens)"
        )
    if ev.type == "tool.called":
        return f"  {ev.agent}: tool {data.get('tool')} ({data.get('status')})"
    if ev.type == "approval.requested":
        return f"[yellow]⏸ {ev.agent}[/yellow] waits for approval {data.get('approval_id')}"
    return None


def register(app: typer.Typer) -> None:
    @app.command(rich_help_panel=TASKS)
    def run(
        system: Annotated[str, typer.Argument(help="The applied AgentSystem to run.")],
        input: Annotated[str, typer.Option("--input", "-i", help="The task's input text.")],
        task_id: Annotated[
            str | None, typer.Option("--task-id", help="Task id (default: a new one).")
        ] = None,
        wait: Annotated[
            bool, typer.Option("--wait", help="Show progress and wait for the result.")
        ] = False,
        timeout: Annotated[
            float, typer.Option("--timeout", help="Seconds to wait, and the task's deadline.")
        ] = 300.0,
        output: Annotated[
            OutputFormat, typer.Option("--output", "-o", help="table | json | yaml")
        ] = OutputFormat.TABLE,
    ) -> None:
        """Submit a task to SYSTEM (prints its id); with --wait, follow it to its result."""
        from podium import environment
        from podium.core import tracing

        kafka = environment.kafka_settings()
        tracing.configure_from_env("podium-cli")
        task = TaskRequested(
            task_id=task_id or f"task-{uuid.uuid4().hex[:12]}",
            system=system,
            input=input,
            submitted_at=utcnow(),
            timeout_s=timeout,
            submitted_by="podium run",
        )
        human = output is OutputFormat.TABLE
        if human:
            err_console.print(f"task [bold]{task.task_id}[/bold] submitted to {system}")
        else:
            if not wait:
                sys.stdout.write(dump_json({"task_id": task.task_id}) + "\n")
        if not wait:
            if human:
                console.print(task.task_id)
            return

        def show(ev: Event) -> None:
            line = _describe(ev)
            if line and human:
                err_console.print(line)

        with err_console.status("waiting for the task…", spinner="dots") if human else _null():
            outcome = asyncio.run(
                submit_and_wait(kafka, task, wait=True, timeout_s=timeout, on_event=show)
            )
        result = outcome.result
        if not human:
            body: dict[str, Any] = {"task_id": task.task_id, "status": "timeout"}
            if result is not None:
                body = msgspec.to_builtins(result)
            sys.stdout.write(dump_json(body) + "\n")
        if result is None:
            if human:
                err_console.print(
                    f"[red]no result within {timeout:g} s[/red] (task {task.task_id})"
                )
            raise typer.Exit(EXIT_TIMEOUT)
        if isinstance(result, TaskCompleted):
            if human:
                console.rule(f"output of {task.task_id}")
                console.print(result.output, markup=False, highlight=False)
                console.print(cost_line(result), style="dim", markup=False, highlight=False)
            return
        if human:
            err_console.print(f"[red]task failed:[/red] {result.error}")
            err_console.print(cost_line(result), style="dim", markup=False, highlight=False)
        raise typer.Exit(EXIT_FAILED)


def cost_line(result: AnyResult) -> str:
    """`cost: $0.0123 (4,321 tokens)`, saying when some calls had no known price."""
    cost = "unknown" if result.cost_usd is None else f"${result.cost_usd:.4f}"
    unpriced = result.unpriced_calls
    note = (
        f"; {unpriced} model call{'s' if unpriced != 1 else ''} without a price" if unpriced else ""
    )
    return f"cost: {cost} ({result.total_tokens:,} tokens{note})"


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
