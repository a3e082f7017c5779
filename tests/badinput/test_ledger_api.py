"""The ledger API under schemathesis: generated requests from its own OpenAPI document, with a
valid token holding every scope, never get a 5xx; nor do extreme times and durations in every
`since` and `until` (years 1 and 9999 with offsets of up to a day, durations past any calendar).

`podium ledger --api-only` runs as its own process on a free port, on a fresh schema of this
module; the API's address is read from the private state file it records it in.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from ledger.auth import Scope, create_token
from ledger.migrate import migrate
from podium.core.lifecycle import READY_LINE
from tests.conftest import StackEndpoints
from tests.faults.cluster import PODIUM
from tests.helpers import wait_for_line, wait_until

# the setup starts `podium ledger --api-only` (over two minutes of a busy machine), within this
pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]

EXAMPLES = 40
TIME_PARAMETERS = ("since", "until")

_offsets = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
)
_times = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))
EXTREME_TIMES = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59-14:00",
            "9999-12-31T23:59:59.999999Z",
            "999999999d",
            "99999999999999999999w",
        ]
    ),
    st.builds(lambda at, offset: at.replace(tzinfo=timezone(offset)).isoformat(), _times, _offsets),
    st.builds(lambda n, unit: f"{n}{unit}", st.integers(0, 10**30), st.sampled_from("smhdw")),
)
"""Every kind of `since`/`until` that is well-formed but far from now, near or past the edges."""


@dataclass(frozen=True, slots=True)
class LedgerApi:
    url: str
    token: str


@pytest.fixture(scope="module")
async def ledger_api(
    stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LedgerApi]:
    schema = f"s{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(stack.database_url)
    try:
        await migrate(conn, schema)
        await conn.execute(f'SET search_path TO "{schema}", public')
        token = await create_token(conn, "schemathesis", list(Scope))
    finally:
        await conn.close()
    home = tmp_path_factory.mktemp("ledger-api")
    (home / "stack.json").write_text("{}")  # the ledger records its address here
    env = {
        "PATH": "/usr/bin:/bin",
        "PODIUM_STACK_DIR": str(home),
        "PODIUM_KAFKA_BOOTSTRAP": stack.bootstrap,
        "PODIUM_KAFKA_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:8]}",
        "PODIUM_DATABASE_URL": stack.database_url,
        "PODIUM_LEDGER_SCHEMA": schema,
        "PODIUM_LEDGER_API_PORT": "0",
    }
    # `POST /v1/tasks` reads the catalog and writes tasks: the stack's principal
    env |= {k: v for k, v in stack.kafka.as_env().items() if "SASL" in k or "SECURITY" in k}
    with (home / "ledger.log").open("wb") as log:
        proc = subprocess.Popen(  # noqa: ASYNC220 (starting it does not block)
            [str(PODIUM), "ledger", "--api-only"],
            cwd=home,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def recorded() -> str | None:
            if proc.poll() is not None:
                raise AssertionError((home / "ledger.log").read_text())
            url = json.loads((home / "stack.json").read_text() or "{}").get("api_url")
            return str(url) if url else None

        # starting the CLI and migrating take seconds of CPU, minutes on a busy machine
        await wait_for_line(home / "ledger.log", READY_LINE, proc, timeout=180)
        url = await wait_until(recorded, timeout=10, interval=0.2)
        yield LedgerApi(url=url, token=token)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
        conn = await asyncpg.connect(stack.database_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


@pytest.fixture(scope="module")
def api_schema(ledger_api: LedgerApi) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(
        f"{ledger_api.url}/openapi.json",
        headers={"Authorization": f"Bearer {ledger_api.token}"},
        timeout=30,
    )


def test_ledger_api_never_answers_5xx(
    api_schema: schemathesis.BaseSchema, ledger_api: LedgerApi
) -> None:
    """Every operation of the document, EXAMPLES generated requests each (with the token)."""
    headers = {"Authorization": f"Bearer {ledger_api.token}"}
    operations = [op.ok() for op in api_schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 5, operations
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def no_server_error(case: schemathesis.Case[Any]) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(
                base_url=ledger_api.url, headers=headers, checks=[not_a_server_error]
            )

        no_server_error()
    print(
        f"\nbadinput ledger API: {len(operations)} operations, {calls} generated requests, no 5xx"
    )


def test_extreme_times_and_durations_never_answer_5xx(
    api_schema: schemathesis.BaseSchema, ledger_api: LedgerApi
) -> None:
    """The operations with a `since` or `until`, with EXTREME_TIMES in them."""
    headers = {"Authorization": f"Bearer {ledger_api.token}"}
    operations = [
        op.ok()
        for op in api_schema.get_all_operations()  # type: ignore[union-attr]
        if any(op.ok().get_parameter(name, "query") for name in TIME_PARAMETERS)
    ]
    assert {op.path for op in operations} >= {"/v1/tasks", "/v1/denials", "/v1/spend"}
    for operation in operations:
        names = [n for n in TIME_PARAMETERS if operation.get_parameter(n, "query")]

        @given(
            case=operation.as_strategy(),
            times=st.fixed_dictionaries({}, optional=dict.fromkeys(names, EXTREME_TIMES)),
        )
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def no_server_error(case: schemathesis.Case[Any], times: dict[str, str]) -> None:
            case.query = {**(case.query or {}), **times}
            case.call_and_validate(
                base_url=ledger_api.url, headers=headers, checks=[not_a_server_error]
            )

        no_server_error()
