"""The HTTP API on real PostgreSQL: auth (401/403), bad parameters (400), unknown ids (404)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from ledger.api import create_app
from ledger.auth import Scope, create_token
from ledger.plan import incoming
from ledger.store import write_batch
from podium.composition.ledger_api import kafka_decider
from podium.core.settings import KafkaSettings
from tests.helpers import approver_for, key_pair
from tests.ledger.conftest import task_events
from topics.messages import (
    ApprovalRequestedData,
    PolicyDecidedData,
    event,
)
from topics.names import TopicNames

pytestmark = pytest.mark.integration

GETS = [
    ("/v1/tasks", Scope.AUDIT_READ),
    ("/v1/tasks/t-api-0", Scope.AUDIT_READ),
    ("/v1/tasks/t-api-0/events", Scope.AUDIT_READ),
    ("/v1/spend", Scope.SPEND_READ),
    ("/v1/denials", Scope.AUDIT_READ),
    ("/v1/approvals?status=pending", Scope.AUDIT_READ),
]
POSTS = [
    ("/v1/approvals/ap-1/approve", Scope.APPROVALS_WRITE),
    ("/v1/approvals/ap-1/deny", Scope.APPROVALS_WRITE),
]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, str, str]] = []

    async def __call__(
        self, approval_id: str, *, granted: bool, decided_by: str, reason: str
    ) -> None:
        self.calls.append((approval_id, granted, decided_by, reason))


@pytest.fixture
async def seeded(ledger_pool: asyncpg.Pool, pg_schema: str) -> asyncpg.Pool:
    now = datetime.now(UTC)
    events = []
    for n in range(5):
        events += task_events(f"t-api-{n}", start=now - timedelta(minutes=10 - n))
    events.append(
        event(
            PolicyDecidedData(
                request_id="r9",
                action="tool_call",
                tool="shell",
                decision="deny",
                rule="denied_tools",
                reason="shell is denied",
            ),
            event_id="deny-1",
            task_id="t-api-0",
            system="research",
            agent="writer",
        )
    )
    events.append(
        event(
            ApprovalRequestedData(
                approval_id="ap-1",
                action="tool_call",
                tool="pay",
                expires_at=now + timedelta(hours=1),
            ),
            event_id="ap-1-req",
            task_id="t-api-1",
            system="research",
            agent="writer",
        )
    )
    async with ledger_pool.acquire() as conn:
        await write_batch(conn, pg_schema, [incoming(e) for e in events])
    return ledger_pool


@pytest.fixture
async def tokens(seeded: asyncpg.Pool) -> dict[str, str]:
    async with seeded.acquire() as conn:
        return {
            "all": await create_token(conn, "alice", list(Scope)),
            "audit": await create_token(conn, "auditor", [Scope.AUDIT_READ]),
            "spend": await create_token(conn, "finance", [Scope.SPEND_READ]),
        }


@pytest.fixture
async def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def client(seeded: asyncpg.Pool, recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(seeded, recorder)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as http:
        yield http


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", p) for p, _ in GETS] + [("POST", p) for p, _ in POSTS] + [("GET", "/openapi.json")],
)
async def test_nothing_is_served_without_a_valid_token(
    client: httpx.AsyncClient, tokens: dict[str, str], method: str, path: str
) -> None:
    assert (await client.request(method, path)).status_code == 401
    bad = await client.request(method, path, headers=auth("pdm_not-a-token"))
    assert bad.status_code == 401 and bad.json()["detail"] == "the token is not valid"
    assert bad.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [("GET", p, s) for p, s in GETS] + [("POST", p, s) for p, s in POSTS],
)
async def test_a_missing_scope_is_403_and_the_right_one_passes(
    client: httpx.AsyncClient, tokens: dict[str, str], method: str, path: str, scope: Scope
) -> None:
    wrong = tokens["spend"] if scope != Scope.SPEND_READ else tokens["audit"]
    denied = await client.request(method, path, headers=auth(wrong))
    assert denied.status_code == 403 and str(scope) in denied.json()["detail"]
    ok = await client.request(method, path, headers=auth(tokens["all"]))
    assert ok.status_code in (200, 202), ok.text


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("/v1/tasks?limit=0", "limit"),
        ("/v1/tasks?limit=abc", "limit"),
        ("/v1/tasks?status=sleeping", "status"),
        ("/v1/tasks?since=yesterday", "since"),
        ("/v1/tasks?cursor=zzz", "cursor"),
        ("/v1/tasks/t-api-0/events?cursor=bad!", "cursor"),
        ("/v1/spend?group_by=planet", "group_by"),
        ("/v1/spend?until=31/12/2025", "until"),
        ("/v1/denials?since=soon", "since"),
        ("/v1/approvals?status=maybe", "status"),
        ("/v1/denials?system=a%00b", "cannot store"),
        ("/v1/tasks/a%00b", "cannot store"),
    ],
)
async def test_bad_parameters_are_400_with_a_message(
    client: httpx.AsyncClient, tokens: dict[str, str], path: str, needle: str
) -> None:
    response = await client.get(path, headers=auth(tokens["all"]))
    assert response.status_code == 400, response.text
    assert needle in response.json()["detail"]


@pytest.mark.parametrize(
    "path", ["/v1/tasks", "/v1/denials", "/v1/spend", "/v1/spend?group_by=task"]
)
@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize(
    "value",
    [
        "999999999d",
        "99999999999999999999d",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
    ],
)
async def test_times_out_of_range_are_400_naming_the_parameter(
    client: httpx.AsyncClient, tokens: dict[str, str], path: str, name: str, value: str
) -> None:
    response = await client.get(path, params={name: value}, headers=auth(tokens["all"]))
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith(f"{name}: ")


async def test_unknown_ids_are_404(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    for path in ("/v1/tasks/nope", "/v1/tasks/nope/events"):
        response = await client.get(path, headers=auth(tokens["all"]))
        assert response.status_code == 404 and "nope" in response.json()["detail"]
    response = await client.post("/v1/approvals/nope/approve", headers=auth(tokens["all"]))
    assert response.status_code == 404


async def test_tasks_pagination_filters_and_output(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        page = (
            await client.get(
                "/v1/tasks",
                params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                headers=auth(tokens["audit"]),
            )
        ).json()
        seen += [t["task_id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"t-api-{n}" for n in range(4, -1, -1)]
    task = (await client.get("/v1/tasks/t-api-3", headers=auth(tokens["audit"]))).json()
    assert task["output"] == "final answer" and task["status"] == "succeeded"
    assert task["input"] == "hello"
    none = await client.get("/v1/tasks?system=other", headers=auth(tokens["audit"]))
    assert none.json()["items"] == []


async def test_events_in_order_spend_denials_and_approvals(
    client: httpx.AsyncClient, tokens: dict[str, str], recorder: Recorder
) -> None:
    h = auth(tokens["all"])
    events = (await client.get("/v1/tasks/t-api-0/events?limit=5", headers=h)).json()
    assert [e["seq"] for e in events["items"]] == [1, 2, 3, 4, 5] and events["next_cursor"]
    rest = (
        await client.get(f"/v1/tasks/t-api-0/events?cursor={events['next_cursor']}", headers=h)
    ).json()
    assert rest["items"][0]["seq"] == 6 and rest["items"][-1]["type"] == "policy.decided"
    spend = (await client.get("/v1/spend?group_by=agent&since=1h", headers=h)).json()
    assert {g["key"]: g["calls"] for g in spend["groups"]} == {"planner": 5, "writer": 5}
    assert spend["total"]["cost_usd"] == pytest.approx(10 * 0.00125)
    for by in ("system", "model", "task", "day"):
        grouped = (await client.get(f"/v1/spend?group_by={by}", headers=h)).json()
        assert sum(g["calls"] for g in grouped["groups"]) == 10, by
    denials = (await client.get("/v1/denials?since=1h", headers=h)).json()["items"]
    assert [(d["event_id"], d["tool"], d["rule"]) for d in denials] == [
        ("deny-1", "shell", "denied_tools")
    ]
    pending = (await client.get("/v1/approvals?status=pending", headers=h)).json()["items"]
    assert [a["approval_id"] for a in pending] == ["ap-1"]
    decided = await client.post("/v1/approvals/ap-1/deny", json={"reason": "too risky"}, headers=h)
    assert decided.status_code == 202
    assert recorder.calls == [("ap-1", False, "alice", "too risky")]


async def test_spend_of_one_task_equals_its_model_calls(
    client: httpx.AsyncClient, tokens: dict[str, str], seeded: asyncpg.Pool
) -> None:
    async with seeded.acquire() as conn:
        raw = await conn.fetch(
            "SELECT agent, (data->>'cost_usd')::numeric AS cost FROM events"
            " WHERE task_id = 't-api-2' AND type = 'model.called'"
        )
    expected: dict[str, float] = {}
    for row in raw:
        expected[row["agent"]] = expected.get(row["agent"], 0.0) + float(row["cost"])
    h = auth(tokens["spend"])
    spend = (await client.get("/v1/spend?group_by=agent&task=t-api-2", headers=h)).json()
    assert spend["task"] == "t-api-2"
    assert {g["key"]: g["cost_usd"] for g in spend["groups"]} == pytest.approx(expected)
    assert spend["total"]["calls"] == len(raw) > 0
    other = (await client.get("/v1/spend?group_by=model&task=no-such-task", headers=h)).json()
    assert other["groups"] == [] and other["total"]["calls"] == 0


async def test_openapi_document_with_a_token(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    doc = (await client.get("/openapi.json", headers=auth(tokens["spend"]))).json()
    assert {
        "/v1/tasks",
        "/v1/tasks/{task_id}",
        "/v1/tasks/{task_id}/events",
        "/v1/spend",
        "/v1/denials",
        "/v1/approvals",
        "/v1/approvals/{approval_id}/approve",
        "/v1/approvals/{approval_id}/deny",
    } <= set(doc["paths"])


async def test_approval_unknown_to_the_policy_service_is_404(
    seeded: asyncpg.Pool,
    tokens: dict[str, str],
    kafka_settings: KafkaSettings,
    topic_names: TopicNames,
) -> None:
    decider = kafka_decider(kafka_settings, topic_names, approver_for(key_pair("test-api")[1]))
    app = create_app(seeded, decider)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ledger"
    ) as http:
        response = await http.post("/v1/approvals/ap-1/approve", headers=auth(tokens["all"]))
    assert response.status_code == 404, response.text
