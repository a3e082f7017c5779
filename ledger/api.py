"""The ledger's HTTP API under `/v1` (FastAPI). Every route needs a bearer token with a scope,
but webhook deliveries (`ledger/api_webhooks.py`), which are signed instead.

Errors are JSON `{"detail": "..."}`: 401 without a valid token, 403 for a missing scope, 400 for
a bad parameter (FastAPI's 422 validation errors included), 404 for an unknown task or approval,
409 for an approval that is already decided.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

import asyncpg
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from ledger import queries, spend, submit
from ledger.api_webhooks import webhook_router
from ledger.auth import Principal, Scope, lookup
from ledger.durations import is_duration, parse_duration
from ledger.webhooks import Webhooks
from topics.messages import TaskRequested, utcnow

API_TITLE = "Podium ledger API"

TaskStatus = Literal["unknown", "requested", "running", "succeeded", "failed"]
ApprovalStatus = Literal["pending", "granted", "denied", "expired"]


class ApprovalUnknown(LookupError):
    """The decider knows no pending approval with this id."""


class ApprovalDecided(RuntimeError):
    """The approval was decided already."""


class Decider(Protocol):
    async def __call__(
        self, approval_id: str, *, granted: bool, decided_by: str, reason: str
    ) -> None: ...


class DecisionBody(BaseModel):
    reason: str = Field(default="", max_length=2000, description="Why, for the audit trail.")


def _encoded(value: Any) -> dict[str, Any]:
    encoded: dict[str, Any] = jsonable_encoder(value)
    return encoded


def parse_time(value: str | None, name: str) -> datetime | None:
    """An RFC 3339 time, or a duration back from now such as `30m`, `24h`, `7d`, in UTC.

    A time outside years 1 to 9999 once in UTC (`0001-01-01T00:00:00+14:00`, `999999999d` back)
    is the client's mistake: 400 naming the parameter, never an overflow inside the API.
    """
    if value is None or value == "":
        return None
    out_of_range = HTTPException(
        400, f"{name}: {value!r} is out of range; use a time between years 1 and 9999 UTC"
    )
    if is_duration(value):
        try:
            return datetime.now(UTC) - parse_duration(value)
        except (OverflowError, ValueError):
            raise out_of_range from None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:
        raise out_of_range from None
    except ValueError:
        raise HTTPException(
            400, f"{name}: {value!r} is not a time; use RFC 3339 (2025-01-31T00:00:00Z) or 7d/24h"
        ) from None


_bearer = HTTPBearer(auto_error=False, description="A token from `podium token create`.")


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from a valid bearer token (401 otherwise)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn:
        found = await lookup(conn, credentials.credentials)
    if found is None:
        raise HTTPException(401, "the token is not valid", headers={"WWW-Authenticate": "Bearer"})
    return found


def require(scope: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if str(scope) not in who.scopes:
            raise HTTPException(403, f"this token lacks the scope {scope}")
        return who

    return check


Audit = Annotated[Principal, Depends(require(Scope.AUDIT_READ))]
Spend = Annotated[Principal, Depends(require(Scope.SPEND_READ))]
Approve = Annotated[Principal, Depends(require(Scope.APPROVALS_WRITE))]
Submit = Annotated[Principal, Depends(require(Scope.TASKS_WRITE))]
Anyone = Annotated[Principal, Depends(principal)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size.")]
EventLimit = Annotated[int, Query(ge=1, le=5000, description="Page size.")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]
Since = Annotated[str | None, Query(description="RFC 3339 time, or 30m / 24h / 7d back.")]


def create_app(
    pool: asyncpg.Pool,
    decide: Decider | None = None,
    submitter: submit.Submitter | None = None,
    webhooks: Webhooks | None = None,
) -> FastAPI:
    """The API over a pool whose search_path is the ledger schema; `submitter` writes the tasks
    of `POST /v1/tasks` and of webhook deliveries, whose webhooks `webhooks` finds (none: the
    API refuses them)."""
    app = FastAPI(
        title=API_TITLE,
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.pool = pool

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ())]
            where = f"{loc[0]} parameter '{'.'.join(loc[1:])}'" if len(loc) > 1 else "request"
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return JSONResponse(status_code=400, content={"detail": "; ".join(problems)})

    @app.exception_handler(asyncpg.CharacterNotInRepertoireError)
    async def _unstorable_text(
        request: Request, exc: asyncpg.CharacterNotInRepertoireError
    ) -> JSONResponse:
        # A NUL character (or invalid UTF-8) in a parameter: no such value can exist here.
        return JSONResponse(
            status_code=400,
            content={"detail": f"a parameter holds a character PostgreSQL cannot store: {exc}"},
        )

    @app.exception_handler(queries.BadCursor)
    async def _bad_cursor(request: Request, exc: queries.BadCursor) -> JSONResponse:
        return JSONResponse(status_code=400, content={"detail": f"cursor: {exc}"})

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(who: Anyone) -> dict[str, Any]:
        return app.openapi()

    @app.get("/v1/tasks", tags=["tasks"], summary="List tasks, newest first")
    async def list_tasks(
        who: Audit,
        system: str | None = None,
        status: TaskStatus | None = None,
        since: Since = None,
        until: Since = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        async with pool.acquire() as conn:
            items, next_cursor = await queries.list_tasks(
                conn,
                system=system,
                status=status,
                since=parse_time(since, "since"),
                until=parse_time(until, "until"),
                limit=limit,
                cursor=cursor,
            )
        return _encoded({"items": items, "next_cursor": next_cursor})

    @app.post("/v1/tasks", tags=["tasks"], summary="Submit a task", status_code=202)
    async def post_task(
        who: Submit,
        body: submit.TaskBody,
        idempotency_key: Annotated[
            str | None, Header(min_length=1, max_length=200, description="As the body's key.")
        ] = None,
    ) -> dict[str, Any]:
        if (
            body.idempotency_key is not None
            and idempotency_key is not None
            and body.idempotency_key != idempotency_key
        ):
            raise HTTPException(400, "the Idempotency-Key header and the body's key differ")
        key = body.idempotency_key or idempotency_key
        if submitter is None:
            raise HTTPException(503, "this ledger cannot submit tasks (no Kafka configured)")
        task = TaskRequested(
            task_id=submit.task_id_for(who.name, key),
            system=body.system,
            input=body.input,
            submitted_at=utcnow(),
            timeout_s=body.timeout_s,
            submitted_by=f"token:{who.name}",
        )
        if key is not None:
            async with pool.acquire() as conn:
                earlier = await submit.claim(conn, who.name, key, task.task_id, task.system)
            if earlier is not None:
                return {"task_id": earlier, "system": body.system, "duplicate": True}
        try:
            await submitter.submit(task)
        except BaseException as exc:
            if key is not None:
                async with pool.acquire() as conn:
                    await submit.release(conn, who.name, key)
            if isinstance(exc, submit.SystemUnknown):
                raise HTTPException(404, str(exc)) from None
            if isinstance(exc, submit.SubmitterUnavailable):
                raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
            raise
        return {"task_id": task.task_id, "system": body.system, "duplicate": False}

    @app.get("/v1/tasks/{task_id}", tags=["tasks"], summary="One task, with its output")
    async def get_task(who: Audit, task_id: str) -> dict[str, Any]:
        async with pool.acquire() as conn:
            task = await queries.get_task(conn, task_id)
        if task is None:
            raise HTTPException(404, f"task {task_id!r} is not in the ledger")
        return _encoded(task)

    @app.get("/v1/tasks/{task_id}/events", tags=["tasks"], summary="A task's audit trail, in order")
    async def get_events(
        who: Audit,
        task_id: str,
        limit: EventLimit = 1000,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        async with pool.acquire() as conn:
            if not await queries.task_exists(conn, task_id):
                raise HTTPException(404, f"task {task_id!r} is not in the ledger")
            items, next_cursor = await queries.task_events(
                conn, task_id, limit=limit, cursor=cursor
            )
        return _encoded({"task_id": task_id, "items": items, "next_cursor": next_cursor})

    @app.get("/v1/spend", tags=["spend"], summary="Tokens and USD of model calls, grouped")
    async def get_spend(
        who: Spend,
        group_by: spend.GroupBy = "system",
        since: Since = None,
        until: Since = None,
        system: str | None = None,
        task: Annotated[str | None, Query(description="Only this task's model calls.")] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        async with pool.acquire() as conn:
            result = await spend.spend(
                conn,
                group_by=group_by,
                since=parse_time(since, "since"),
                until=parse_time(until, "until"),
                system=system,
                task=task,
                limit=limit,
                cursor=cursor,
            )
        return _encoded(result)

    @app.get("/v1/denials", tags=["audit"], summary="Policy decisions that denied an action")
    async def get_denials(
        who: Audit,
        since: Since = None,
        until: Since = None,
        system: str | None = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        async with pool.acquire() as conn:
            items, next_cursor = await queries.denials(
                conn,
                since=parse_time(since, "since"),
                until=parse_time(until, "until"),
                system=system,
                limit=limit,
                cursor=cursor,
            )
        return _encoded({"items": items, "next_cursor": next_cursor})

    @app.get("/v1/approvals", tags=["approvals"], summary="Approvals, by status")
    async def get_approvals(
        who: Audit,
        status: ApprovalStatus | None = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        async with pool.acquire() as conn:
            items, next_cursor = await queries.approvals(
                conn, status=status, limit=limit, cursor=cursor
            )
        return _encoded({"items": items, "next_cursor": next_cursor})

    async def _decide(
        approval_id: str, granted: bool, who: Principal, body: DecisionBody | None
    ) -> dict[str, Any]:
        async with pool.acquire() as conn:
            status = await queries.approval_status(conn, approval_id)
        if status is None:
            raise HTTPException(404, f"approval {approval_id!r} is not in the ledger")
        if status != "pending":
            raise HTTPException(409, f"approval {approval_id!r} is already {status}")
        if decide is None:
            raise HTTPException(
                503,
                "this ledger decides no approvals: it has no approver key "
                "(PODIUM_APPROVER_SIGNING_KEY) or no Kafka",
            )
        reason = body.reason if body else ""
        try:
            await decide(approval_id, granted=granted, decided_by=who.name, reason=reason)
        except ApprovalUnknown as exc:
            raise HTTPException(404, str(exc)) from None
        except ApprovalDecided as exc:
            raise HTTPException(409, str(exc)) from None
        return {
            "approval_id": approval_id,
            "decision": "granted" if granted else "denied",
            "decided_by": who.name,
        }

    @app.post("/v1/approvals/{approval_id}/approve", tags=["approvals"], status_code=202)
    async def approve(
        who: Approve, approval_id: str, body: DecisionBody | None = None
    ) -> dict[str, Any]:
        return await _decide(approval_id, True, who, body)

    @app.post("/v1/approvals/{approval_id}/deny", tags=["approvals"], status_code=202)
    async def deny(
        who: Approve, approval_id: str, body: DecisionBody | None = None
    ) -> dict[str, Any]:
        return await _decide(approval_id, False, who, body)

    app.include_router(webhook_router(pool, webhooks, submitter))
    return app
