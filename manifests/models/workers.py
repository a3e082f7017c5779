"""`Worker` (Orloj v0.3): what an actor replica started with `podium actor AGENT --worker NAME`
offers. On Kafka every replica of an agent's consumer group takes steps of any task, so a Worker
does not pick tasks: it bounds and checks the replica (see `actors/worker.py`)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field

from manifests.models._base import ResourceBase, _Model


def _at_least_one(value: object) -> object:
    # Orloj reads `max_concurrent_tasks <= 0` as 1.
    return 1 if isinstance(value, int) and not isinstance(value, bool) and value <= 0 else value


class WorkerCapabilities(_Model):
    gpu: bool = False
    supported_models: list[Annotated[str, Field(min_length=1)]] = []


class WorkerSpec(_Model):
    region: str = ""
    capabilities: WorkerCapabilities = WorkerCapabilities()
    max_concurrent_tasks: Annotated[int, BeforeValidator(_at_least_one)] = Field(
        default=1, ge=1, le=100_000
    )


class Worker(ResourceBase):
    kind_name: ClassVar[str] = "Worker"
    kind: Literal["Worker"]
    spec: WorkerSpec
