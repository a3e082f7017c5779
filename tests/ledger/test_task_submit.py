"""`POST /v1/tasks` on real Kafka and PostgreSQL: a task of an applied system reaches the tasks
topic once per idempotency key (body or `Idempotency-Key` header), with the token's name as its
submitter; an unknown system is 404 and submits nothing; the scope `tasks:write` is required."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from ledger.api import create_app
from ledger.auth import Scope, create_token
from ledger.submit import task_id_for
from manifests.apply import apply_paths
from podium.composition.ledger_api import KafkaSubmitter
from podium.core.settings import KafkaSettings
from tests.faults.cluster import read_topic
from topics.codec import decode
from topics.messages import TaskRequested
from topics.names import TopicNames

pytestmark = pytest.mark.integration

REPORT = Path(__file__).parents[2] / "manifests" / "examples" / "report-system"
SYSTEM = "report-system"


@pytest.fixture
async def tokens(ledger_pool: asyncpg.Pool) -> dict[str, str]:
    async with ledger_pool.acquire() as conn:
        return {
            "ops": await create_token(conn, "ops-bot", [Scope.TASKS_WRITE]),
            "other": await create_token(conn, "other-bot", [Scope.TASKS_WRITE]),
            "audit": await create_token(conn, "auditor", [Scope.AUDIT_READ]),
        }


@pytest.fixture
async def client(
    ledger_pool: asyncpg.Pool, kafka_settings: KafkaSettings, topic_names: TopicNames
) -> AsyncIterator[httpx.AsyncClient]:
    await apply_paths(kafka_settings, topic_names, [REPORT])
    submitter = KafkaSubmitter(kafka_settings, topic_names)
    app = create_app(ledger_pool, None, submitter)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ledger"
        ) as http:
            yield http
    finally:
        await submitter.aclose()


def auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


async def submitted(kafka: KafkaSettings, names: TopicNames) -> list[TaskRequested]:
    return [decode(r.value, TaskRequested) for r in await read_topic(kafka, names.tasks)]


async def test_a_task_is_submitted_once_per_idempotency_key(
    client: httpx.AsyncClient,
    tokens: dict[str, str],
    kafka_settings: KafkaSettings,
    topic_names: TopicNames,
) -> None:
    body = {"system": SYSTEM, "input": {"topic": "kafka"}, "idempotency_key": "deploy-42"}
    first = await client.post("/v1/tasks", json=body, headers=auth(tokens["ops"]))
    assert first.status_code == 202, first.text
    task_id = first.json()["task_id"]
    assert task_id == task_id_for("ops-bot", "deploy-42")
    again = await client.post("/v1/tasks", json=body, headers=auth(tokens["ops"]))
    by_header = await client.post(
        "/v1/tasks",
        json={"system": SYSTEM, "input": {"topic": "kafka"}},
        headers=auth(tokens["ops"], **{"Idempotency-Key": "deploy-42"}),
    )
    for retry in (again, by_header):
        assert retry.status_code == 202, retry.text
        assert retry.json() == {"task_id": task_id, "system": SYSTEM, "duplicate": True}
    # another token's same key is another task; no key is a new task each time
    other = await client.post("/v1/tasks", json=body, headers=auth(tokens["other"]))
    keyless = [
        await client.post(
            "/v1/tasks", json={"system": SYSTEM, "input": "hi"}, headers=auth(tokens["ops"])
        )
        for _ in range(2)
    ]
    ids = [task_id, other.json()["task_id"], *(r.json()["task_id"] for r in keyless)]
    assert len(set(ids)) == 4

    tasks = await submitted(kafka_settings, topic_names)
    assert sorted(t.task_id for t in tasks) == sorted(ids)
    first_task = next(t for t in tasks if t.task_id == task_id)
    assert first_task.system == SYSTEM and first_task.input == {"topic": "kafka"}
    assert first_task.submitted_by == "token:ops-bot"


async def test_unknown_system_is_404_and_submits_nothing(
    client: httpx.AsyncClient,
    tokens: dict[str, str],
    kafka_settings: KafkaSettings,
    topic_names: TopicNames,
) -> None:
    body = {"system": "no-such-system", "input": "x", "idempotency_key": "k1"}
    for _ in range(2):
        response = await client.post("/v1/tasks", json=body, headers=auth(tokens["ops"]))
        assert response.status_code == 404, response.text
        assert "not applied" in response.json()["detail"]
    assert await submitted(kafka_settings, topic_names) == []
    # the key was released: once the name is right, the same key submits
    fixed = {**body, "system": SYSTEM}
    ok = await client.post("/v1/tasks", json=fixed, headers=auth(tokens["ops"]))
    assert ok.status_code == 202 and ok.json()["duplicate"] is False


@pytest.mark.parametrize(
    ("body", "headers", "needle"),
    [
        ({"input": "x"}, {}, "system"),
        ({"system": "bad name!", "input": "x"}, {}, "system"),
        ({"system": SYSTEM, "input": 5}, {}, "input"),
        ({"system": SYSTEM, "input": "x", "idempotency_key": ""}, {}, "idempotency_key"),
        ({"system": SYSTEM, "input": "x", "surprise": 1}, {}, "surprise"),
        (
            {"system": SYSTEM, "input": "x", "idempotency_key": "a"},
            {"Idempotency-Key": "b"},
            "differ",
        ),
    ],
)
async def test_bad_bodies_are_400(
    client: httpx.AsyncClient,
    tokens: dict[str, str],
    body: dict[str, object],
    headers: dict[str, str],
    needle: str,
) -> None:
    response = await client.post("/v1/tasks", json=body, headers=auth(tokens["ops"], **headers))
    assert response.status_code == 400, response.text
    assert needle in response.json()["detail"]


async def test_submitting_needs_the_tasks_write_scope(
    client: httpx.AsyncClient,
    tokens: dict[str, str],
    kafka_settings: KafkaSettings,
    topic_names: TopicNames,
) -> None:
    body = {"system": SYSTEM, "input": "x"}
    assert (await client.post("/v1/tasks", json=body)).status_code == 401
    bad = await client.post("/v1/tasks", json=body, headers=auth("pdm_forged"))
    assert bad.status_code == 401
    denied = await client.post("/v1/tasks", json=body, headers=auth(tokens["audit"]))
    assert denied.status_code == 403 and "tasks:write" in denied.json()["detail"]
    assert await submitted(kafka_settings, topic_names) == []
