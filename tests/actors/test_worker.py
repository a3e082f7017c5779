"""Orloj's `Worker` on Kafka: an actor replica started as a Worker takes its
`max_concurrent_tasks` as its steps in flight and refuses to serve models, regions or a GPU it
cannot honour (`actors/worker.py`)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from actors.settings import ActorSettings
from actors.worker import WorkerRefused, worker_settings
from manifests.catalog import Catalog
from manifests.loader import build, parse_text
from podium import composition
from tests.actors.conftest import FAST_ACTOR, Runtime
from tests.policy.conftest import policy_settings
from topics.messages import TaskCompleted

MANIFESTS = Path(__file__).with_name("orloj_worker.yaml")


def catalog(extra: str = "") -> Catalog:
    located, errors = parse_text(MANIFESTS.name, MANIFESTS.read_text() + extra)
    result = build(located, errors)
    assert result.catalog is not None, [str(e) for e in result.errors]
    return result.catalog


def test_max_concurrent_tasks_are_the_steps_in_flight() -> None:
    settings = worker_settings(catalog(), "worker-a", ["solo"], ActorSettings())
    assert settings.max_in_flight == 3


def test_unsupported_model_missing_worker_region_and_gpu_are_refused() -> None:
    with pytest.raises(WorkerRefused, match="does not support model 'mock-1'"):
        worker_settings(catalog(), "gpt-only", ["solo"], ActorSettings())
    with pytest.raises(WorkerRefused, match="Worker/ghost is not applied"):
        worker_settings(catalog(), "ghost", ["solo"], ActorSettings())
    for spec in ("{region: eu-west}", "{capabilities: {gpu: true}}"):
        extra = (
            f"---\napiVersion: orloj.dev/v1\nkind: Worker\nmetadata: {{name: w}}\nspec: {spec}\n"
        )
        with pytest.raises(WorkerRefused, match="cannot be honoured"):
            worker_settings(catalog(extra), "w", ["solo"], ActorSettings())


def test_a_qualified_model_name_is_supported_too() -> None:
    extra = (
        "---\napiVersion: orloj.dev/v1\nkind: Worker\nmetadata: {name: q}\n"
        "spec: {capabilities: {supported_models: [worker-mock/mock-1]}}\n"
    )
    assert worker_settings(catalog(extra), "q", ["solo"], ActorSettings()).max_in_flight == 1


@pytest.mark.integration
async def test_a_replica_serves_as_its_worker(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="podium.composition")
    await runtime.start([MANIFESTS], actors=["solo"], worker="worker-a")
    task_id = await runtime.submit("solo-worker", "hello")
    result = await runtime.result(task_id, timeout=60)
    assert isinstance(result, TaskCompleted) and result.output == "served by the worker"
    assert "serving as Worker/worker-a: 3 steps in flight" in caplog.text


@pytest.mark.integration
async def test_a_replica_refuses_a_worker_that_does_not_serve_its_model(runtime: Runtime) -> None:
    await runtime.apply([MANIFESTS])
    role = composition.ActorRole(
        runtime.kafka, ["solo"], FAST_ACTOR, policy_settings(), worker="gpt-only"
    )
    with pytest.raises(WorkerRefused, match="does not support model"):
        await asyncio.wait_for(role.run(asyncio.Event()), 60)
