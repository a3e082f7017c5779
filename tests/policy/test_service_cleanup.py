"""The policy service closes what it opened when its start fails part way."""

from __future__ import annotations

import asyncio

import pytest

import policy_service.service as service_module
from podium import composition
from podium.core.settings import DatabaseSettings
from policy_service.budgets import BudgetStore
from tests.policy.conftest import PolicyHarness, policy_settings
from tests.policy.manifests_fixture import pricer


class FailingRules:
    def current(self) -> object:
        raise AssertionError("never asked")

    async def start(self) -> None:
        raise RuntimeError("the rules cannot be read")

    async def stop(self) -> None:
        return None


async def test_budgets_pool_closed_when_the_rules_fail_to_start(
    harness: PolicyHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[BudgetStore] = []
    closed: list[BudgetStore] = []
    connect = BudgetStore.connect
    close = BudgetStore.close

    async def recording_connect(*args: object, **kwargs: object) -> BudgetStore:
        store = await connect(*args, **kwargs)  # type: ignore[arg-type]
        opened.append(store)
        return store

    async def recording_close(self: BudgetStore) -> None:
        closed.append(self)
        await close(self)

    monkeypatch.setattr(service_module.BudgetStore, "connect", recording_connect)
    monkeypatch.setattr(service_module.BudgetStore, "close", recording_close)
    service = composition.policy_service(
        harness.kafka,
        policy_settings(),
        DatabaseSettings(url=harness.database_url),
        rules=FailingRules(),  # type: ignore[arg-type]
        pricer=pricer,
        db_schema=harness.schema,
    )
    with pytest.raises(RuntimeError, match="cannot be read"):
        await asyncio.wait_for(service.run(asyncio.Event()), 60)
    assert len(opened) == 1
    assert closed == opened
