"""The webhook ingress route of the ledger API: `POST /v1/webhook-deliveries/{name}`.

It takes no bearer token: the delivery's HMAC signature, made with the webhook's secret, is its
authentication. A refused delivery answers `{"detail": "..."}` with a 4xx status and submits
nothing; only Kafka being unreachable is 503 (the sender retries).
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, HTTPException, Path, Request

from ledger import submit
from ledger.webhook_signatures import MAX_BODY_BYTES, DeliveryRefused
from ledger.webhooks import Webhooks, deliver
from topics.messages import utcnow

WebhookName = Annotated[str, Path(max_length=200, pattern=submit.NAME_PATTERN)]


async def read_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it passes MAX_BODY_BYTES (never read whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise DeliveryRefused(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise DeliveryRefused(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def webhook_router(
    pool: asyncpg.Pool, webhooks: Webhooks | None, submitter: submit.Submitter | None
) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/webhook-deliveries/{name}",
        tags=["webhooks"],
        summary="Deliver a signed event to a TaskWebhook",
        status_code=202,
        responses={
            401: {"description": "Bad, missing or stale signature"},
            404: {"description": "No such webhook"},
            409: {"description": "The webhook is suspended"},
            413: {"description": "Body over 1 MiB"},
        },
    )
    async def deliver_webhook(name: WebhookName, request: Request) -> dict[str, Any]:
        if webhooks is None:  # no catalog to find webhooks in: none is known here
            raise HTTPException(404, f"no TaskWebhook {name!r}: this ledger serves no webhooks")
        if submitter is None:
            raise HTTPException(503, "this ledger cannot take webhooks (no Kafka configured)")
        try:
            body = await read_body(request)
            return await deliver(
                pool,
                webhooks,
                submitter,
                name=name,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                now=utcnow(),
            )
        except DeliveryRefused as exc:
            raise HTTPException(exc.status, str(exc)) from None
        except submit.SystemUnknown as exc:
            raise HTTPException(400, f"webhook {name!r} cannot start its task: {exc}") from None
        except submit.SubmitterUnavailable as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None

    return router
