"""`POST /v1/webhook-deliveries/{name}`: a signed delivery of a `TaskWebhook` starts its task
template once per event id.

In Orloj's order: an unknown webhook is 404, a suspended one 409, a body over 1 MiB 413, a secret
that cannot be read 400, a bad or stale signature 401, a missing event id 400. A delivery whose
event id was seen within the webhook's dedupe window answers 202 with the first delivery's task
and submits nothing. Otherwise the event is claimed in `webhook_deliveries` and the task is
submitted; if that fails the claim is released, so the sender's retry submits it. The task id is
derived from the webhook and the event id, so even a redelivery after the window is the same task,
which the dispatcher starts only once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from ledger.submit import Submitter
from ledger.webhook_signatures import (
    DeliveryRefused,
    event_id,
    task_input,
    verify_signature,
    webhook_task_id,
)
from manifests.catalog import Catalog
from manifests.models import Task
from manifests.models.webhooks import TaskWebhook
from manifests.sealing import SealingError, open_applied
from topics.messages import TaskRequested

WEBHOOK_LABEL = "podium.dev/webhook"
EVENT_LABEL = "podium.dev/webhook-event"


class WebhookUnknown(LookupError):
    """No TaskWebhook of this name is applied."""


class WebhookNotReady(RuntimeError):
    """The webhook is applied but its task template or its secret cannot be used."""


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """What a delivery needs: the webhook, the task template it starts, and its secret."""

    hook: TaskWebhook
    template: Task
    secret: bytes


class Webhooks(Protocol):
    async def target(self, name: str) -> WebhookTarget:
        """The applied webhook `name` (WebhookUnknown if none; WebhookNotReady if its template
        or secret is missing or cannot be opened)."""
        ...


def catalog_target(
    catalog: Catalog, name: str, sealing_key: X25519PrivateKey | None
) -> WebhookTarget:
    """The webhook `name` of the applied `catalog`, its template and its opened secret, or
    WebhookUnknown / WebhookNotReady saying what is missing."""
    hook = catalog.webhooks.get(name)
    if hook is None:
        raise WebhookUnknown(f"no TaskWebhook {name!r} is applied (`podium get webhooks`)")
    template = catalog.tasks.get(hook.spec.task_name)
    if template is None:
        raise WebhookNotReady(
            f"TaskWebhook/{name}: its task_ref {hook.spec.task_ref!r} is not an applied Task"
        )
    auth = hook.spec.auth
    try:
        value = open_applied(
            catalog.secrets.get(auth.secret_name),
            auth.secret_name,
            auth.secret_key,
            sealing_key,
            holder="this ledger",
            key_setting="PODIUM_LEDGER_SEALING_KEY",
        )
    except SealingError as exc:
        raise WebhookNotReady(f"TaskWebhook/{name}: auth.secret_ref: {exc}") from None
    return WebhookTarget(hook=hook, template=template, secret=value)


async def deliver(
    pool: asyncpg.Pool,
    webhooks: Webhooks,
    submitter: Submitter,
    *,
    name: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> dict[str, Any]:
    """Decide and carry out one delivery; `headers` have lower-case names. Raises
    DeliveryRefused with the HTTP status to answer."""
    try:
        target = await webhooks.target(name)
    except WebhookUnknown as exc:
        raise DeliveryRefused(404, str(exc)) from None
    except WebhookNotReady as exc:
        raise DeliveryRefused(400, str(exc)) from None
    hook = target.hook
    if hook.spec.suspend:
        raise DeliveryRefused(409, f"webhook {name!r} is suspended")
    verify_signature(hook, headers, body, target.secret, now)
    event = event_id(hook, headers, body)
    template = target.template.spec
    task = TaskRequested(
        task_id=webhook_task_id(name, event),
        system=template.system,
        input=task_input(hook, template.input, body, event=event, received_at=now),
        submitted_at=now,
        submitted_by=f"webhook/{name}",
        labels={**target.template.metadata.labels, WEBHOOK_LABEL: name, EVENT_LABEL: event},
    )
    expires = now + timedelta(seconds=hook.spec.dedupe_window_seconds)
    async with pool.acquire() as conn:
        earlier = await _claim(conn, name, event, task.task_id, now, expires)
    if earlier is not None:
        return _answer(event, earlier, duplicate=True)
    try:
        await submitter.submit(task)
    except BaseException:
        async with pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM webhook_deliveries WHERE webhook = $1 AND event_id = $2",
                name,
                event,
            )
        raise
    return _answer(event, task.task_id, duplicate=False)


def _answer(event: str, task_id: str, *, duplicate: bool) -> dict[str, Any]:
    return {
        "accepted": True,
        "duplicate": duplicate,
        "event_id": event,
        "task_id": task_id,
        "message": "duplicate delivery" if duplicate else "delivery accepted",
    }


async def _claim(
    conn: asyncpg.Connection,
    webhook: str,
    event: str,
    task_id: str,
    now: datetime,
    expires: datetime,
) -> str | None:
    """Record the event's delivery; None if this call recorded it (or the earlier record had
    expired), else the task id recorded before."""
    async with conn.transaction():
        await conn.execute("DELETE FROM webhook_deliveries WHERE expires_at <= $1", now)
        row = await conn.fetchrow(
            "INSERT INTO webhook_deliveries (webhook, event_id, task_id, received_at, expires_at)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING task_id",
            webhook,
            event,
            task_id,
            now,
            expires,
        )
        if row is not None:
            return None
        earlier: str = await conn.fetchval(
            "SELECT task_id FROM webhook_deliveries WHERE webhook = $1 AND event_id = $2",
            webhook,
            event,
        )
        return earlier
