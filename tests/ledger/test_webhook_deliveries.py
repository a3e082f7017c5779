"""`POST /v1/webhook-deliveries/{name}` on real PostgreSQL and Kafka: GitHub-style and generic
HMAC deliveries start their template's task once per event id; forged, stale, replayed,
oversized and malformed deliveries start nothing and are never answered with a 5xx.

The webhooks here are found by a directory of the test's own (the route's `Webhooks` seam), so
that each case chooses its webhook and secret; `test_webhook_pipeline.py` runs Orloj's
event-driven webhook use case through the real catalog, sealed secret included."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from ledger.api import create_app
from ledger.webhook_signatures import MAX_BODY_BYTES, webhook_task_id
from ledger.webhooks import WebhookNotReady, WebhookTarget, WebhookUnknown
from manifests.apply import apply_paths
from manifests.models import Task
from manifests.models.webhooks import TaskWebhook
from podium.composition.ledger_api import KafkaSubmitter
from podium.core.settings import KafkaSettings
from tests.faults.cluster import read_topic
from topics.codec import decode
from topics.messages import TaskRequested
from topics.names import TopicNames

pytestmark = pytest.mark.integration

REPORT = Path(__file__).parents[2] / "manifests" / "examples" / "report-system"
SECRET = b"replace-me"
TEMPLATE = Task.model_validate(
    {
        "apiVersion": "orloj.dev/v1",
        "kind": "Task",
        "metadata": {"name": "weekly-report-template", "labels": {"team": "ops"}},
        "spec": {"mode": "template", "system": "report-system", "input": {"topic": "AI"}},
    }
)


def webhook(name: str, profile: str, **spec: Any) -> TaskWebhook:
    return TaskWebhook.model_validate(
        {
            "apiVersion": "orloj.dev/v1",
            "kind": "TaskWebhook",
            "metadata": {"name": name},
            "spec": {
                "task_ref": "weekly-report-template",
                "auth": {"profile": profile, "secret_ref": "webhook-shared-secret"},
                **spec,
            },
        }
    )


class Directory:
    """The applied webhooks of these tests."""

    def __init__(self) -> None:
        self.hooks = {
            "generic": webhook("generic", "generic"),
            "github": webhook("github", "github"),
            "paused": webhook("paused", "generic", suspend=True),
            "brief": webhook("brief", "generic", idempotency={"dedupe_window_seconds": 0}),
            "token": TaskWebhook.model_validate(
                {
                    "apiVersion": "orloj.dev/v1",
                    "kind": "TaskWebhook",
                    "metadata": {"name": "token"},
                    "spec": {
                        "task_ref": "weekly-report-template",
                        "auth": {"profile": "shared_token", "secret_ref": "webhook-shared-secret"},
                        "idempotency": {"event_id_json_path": "$.alert.id"},
                    },
                }
            ),
        }

    async def target(self, name: str) -> WebhookTarget:
        if name == "no-secret":
            raise WebhookNotReady("secret 'webhook-shared-secret' is not applied")
        if name not in self.hooks:
            raise WebhookUnknown(f"TaskWebhook {name!r} is not applied")
        return WebhookTarget(hook=self.hooks[name], template=TEMPLATE, secret=SECRET)


@pytest.fixture
async def client(
    ledger_pool: asyncpg.Pool, kafka_settings: KafkaSettings, topic_names: TopicNames
) -> AsyncIterator[httpx.AsyncClient]:
    await apply_paths(kafka_settings, topic_names, [REPORT])
    submitter = KafkaSubmitter(kafka_settings, topic_names)
    app = create_app(ledger_pool, None, submitter, Directory())
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ledger"
        ) as http:
            yield http
    finally:
        await submitter.aclose()


def generic_headers(
    body: bytes, event: str, *, at: int | None = None, key: bytes = SECRET
) -> dict[str, str]:
    stamp = str(int(time.time()) if at is None else at)
    signature = hmac.new(key, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Timestamp": stamp, "X-Event-Id": event, "X-Signature": f"sha256={signature}"}


def github_headers(body: bytes, delivery: str, *, key: bytes = SECRET) -> dict[str, str]:
    signature = hmac.new(key, body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": f"sha256={signature}",
    }


async def submitted(kafka: KafkaSettings, names: TopicNames) -> list[TaskRequested]:
    return [decode(r.value, TaskRequested) for r in await read_topic(kafka, names.tasks)]


async def test_a_generic_delivery_starts_the_template_once_per_event(
    client: httpx.AsyncClient, kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    body = b'{"event":"report.trigger","topic":"AI startups"}'
    first = await client.post(
        "/v1/webhook-deliveries/generic", content=body, headers=generic_headers(body, "evt-001")
    )
    assert first.status_code == 202, first.text
    answer = first.json()
    assert answer["accepted"] is True and answer["duplicate"] is False
    assert answer["task_id"] == webhook_task_id("generic", "evt-001")
    # the sender retries (a new timestamp, a new signature): the same task, nothing submitted
    retried = await client.post(
        "/v1/webhook-deliveries/generic", content=body, headers=generic_headers(body, "evt-001")
    )
    assert retried.status_code == 202, retried.text
    assert retried.json()["duplicate"] is True
    assert retried.json()["task_id"] == answer["task_id"]

    [task] = await submitted(kafka_settings, topic_names)
    assert task.task_id == answer["task_id"]
    assert task.system == "report-system"
    assert task.submitted_by == "webhook/generic"
    assert isinstance(task.input, dict)
    assert task.input["topic"] == "AI"  # the template's input stays
    assert task.input["webhook_payload"] == body.decode()
    assert task.input["webhook_event_id"] == "evt-001"
    assert task.input["webhook_source"] == "generic"
    assert task.labels["team"] == "ops"
    assert task.labels["podium.dev/webhook"] == "generic"


async def test_a_github_delivery_starts_a_task(
    client: httpx.AsyncClient, kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    body = b'{"ref":"refs/heads/main","repository":{"full_name":"acme/repo"}}'
    response = await client.post(
        "/v1/webhook-deliveries/github", content=body, headers=github_headers(body, "d-1")
    )
    assert response.status_code == 202, response.text
    [task] = await submitted(kafka_settings, topic_names)
    assert task.task_id == webhook_task_id("github", "d-1")
    assert isinstance(task.input, dict) and task.input["webhook_source"] == "github"


async def test_concurrent_redeliveries_start_one_task(
    client: httpx.AsyncClient, kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    body = b"{}"
    answers = await asyncio.gather(
        *(
            client.post(
                "/v1/webhook-deliveries/github", content=body, headers=github_headers(body, "d-9")
            )
            for _ in range(8)
        )
    )
    assert all(a.status_code == 202 for a in answers), [a.text for a in answers]
    assert sorted(a.json()["duplicate"] for a in answers) == [False] + [True] * 7
    assert len(await submitted(kafka_settings, topic_names)) == 1


@pytest.mark.parametrize(
    ("case", "status", "needle"),
    [
        ("forged", 401, "does not match"),
        ("stale", 401, "stale"),
        ("unsigned", 401, "missing"),
        ("wrong-prefix", 401, "sha256="),
        ("no-event-id", 400, "event id"),
        ("not-utf8", 400, "UTF-8"),
        ("unknown-hook", 404, "not applied"),
        ("suspended", 409, "suspended"),
        ("no-secret", 400, "secret"),
        ("bad-name", 400, "name"),
    ],
)
async def test_refused_deliveries_start_nothing(
    client: httpx.AsyncClient,
    kafka_settings: KafkaSettings,
    topic_names: TopicNames,
    case: str,
    status: int,
    needle: str,
) -> None:
    body = b'{"a": 1}'
    name = {"unknown-hook": "nope", "suspended": "paused", "no-secret": "no-secret"}.get(
        case, "generic"
    )
    headers = generic_headers(body, "e-1")
    if case == "forged":
        headers = generic_headers(body, "e-1", key=b"guessed")
    elif case == "stale":
        headers = generic_headers(body, "e-1", at=int(time.time()) - 301)
    elif case == "unsigned":
        del headers["X-Signature"]
    elif case == "wrong-prefix":
        headers["X-Signature"] = headers["X-Signature"].removeprefix("sha256=")
    elif case == "no-event-id":
        del headers["X-Event-Id"]
    elif case == "not-utf8":
        body = b"\xff\xfe"
        headers = generic_headers(body, "e-1")
    path = "/v1/webhook-deliveries/" + ("bad name!" if case == "bad-name" else name)
    response = await client.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert needle in response.json()["detail"]
    assert await submitted(kafka_settings, topic_names) == []


async def test_a_replayed_delivery_is_refused_once_stale_and_deduplicated_before(
    client: httpx.AsyncClient, kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    """An attacker who captured a signed delivery replays it: within the skew it is the same
    event (no new task); after it, a stale timestamp (401); with a new event id, a bad
    signature (the event id is not signed, but the timestamp is, so the capture cannot be
    re-dated)."""
    body = b'{"deploy": 7}'
    captured = generic_headers(body, "evt-7")
    first = await client.post("/v1/webhook-deliveries/generic", content=body, headers=captured)
    assert first.status_code == 202
    replay = await client.post("/v1/webhook-deliveries/generic", content=body, headers=captured)
    assert replay.status_code == 202 and replay.json()["duplicate"] is True
    redated = {**captured, "X-Timestamp": str(int(time.time()) + 1)}
    forged = await client.post("/v1/webhook-deliveries/generic", content=body, headers=redated)
    assert forged.status_code == 401
    assert len(await submitted(kafka_settings, topic_names)) == 1


async def test_an_oversized_body_is_413_and_starts_nothing(
    client: httpx.AsyncClient, kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    body = b"x" * (MAX_BODY_BYTES + 1)
    declared = await client.post(
        "/v1/webhook-deliveries/github", content=body, headers=github_headers(body, "big")
    )
    assert declared.status_code == 413, declared.text

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: streamed, cut at the cap
        for _ in range(5):
            yield b"y" * (MAX_BODY_BYTES // 4)

    streamed = await client.post(
        "/v1/webhook-deliveries/github", content=chunks(), headers=github_headers(b"", "big2")
    )
    assert streamed.status_code == 413, streamed.text
    assert await submitted(kafka_settings, topic_names) == []


async def test_after_the_dedupe_window_a_redelivery_is_the_same_task(
    client: httpx.AsyncClient, ledger_pool: asyncpg.Pool
) -> None:
    """`brief` keeps no window: a redelivery is claimed again (the expired row is removed) and
    submits the same task id, which the dispatcher starts once."""
    body = b"{}"
    first = await client.post(
        "/v1/webhook-deliveries/brief", content=body, headers=generic_headers(body, "e-5")
    )
    again = await client.post(
        "/v1/webhook-deliveries/brief", content=body, headers=generic_headers(body, "e-5")
    )
    assert first.status_code == again.status_code == 202
    assert again.json()["duplicate"] is False
    assert again.json()["task_id"] == first.json()["task_id"]
    async with ledger_pool.acquire() as conn:
        rows = await conn.fetch("SELECT event_id FROM webhook_deliveries")
    assert [r["event_id"] for r in rows] == ["e-5"]


async def test_a_ledger_without_webhooks_answers_404_not_5xx(
    ledger_pool: asyncpg.Pool, kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    """No catalog of webhooks (a ledger API process with no Kafka catalog): no name is known."""
    submitter = KafkaSubmitter(kafka_settings, topic_names)
    app = create_app(ledger_pool, None, submitter, None)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ledger"
        ) as http:
            response = await http.post("/v1/webhook-deliveries/generic", content=b"{}")
    finally:
        await submitter.aclose()
    assert response.status_code == 404, response.text
    assert "serves no webhooks" in response.json()["detail"]


async def test_a_shared_token_delivery_is_deduplicated_by_its_bodys_event_id(
    client: httpx.AsyncClient, kafka_settings: KafkaSettings, topic_names: TopicNames
) -> None:
    """Podium's `shared_token` profile (the sender puts the secret in a header) with the event
    id at `$.alert.id` of the body: a retry is the same task; a wrong token starts nothing."""
    body = b'{"alert": {"id": "A-17", "severity": "high"}}'
    path = "/v1/webhook-deliveries/token"
    wrong = await client.post(path, content=body, headers={"X-Webhook-Token": "guess"})
    assert wrong.status_code == 401, wrong.text
    first = await client.post(path, content=body, headers={"X-Webhook-Token": SECRET.decode()})
    again = await client.post(path, content=body, headers={"X-Webhook-Token": SECRET.decode()})
    assert first.status_code == again.status_code == 202, first.text
    assert first.json()["event_id"] == "A-17" and again.json()["duplicate"] is True
    assert again.json()["task_id"] == first.json()["task_id"] == webhook_task_id("token", "A-17")
    [task] = await submitted(kafka_settings, topic_names)
    assert task.input["webhook_source"] == "shared_token"
