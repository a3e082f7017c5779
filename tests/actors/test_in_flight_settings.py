"""The in-flight limit of an actor: a setting, checked at start; the replaced per-partition
concurrency setting is refused rather than silently ignored."""

from __future__ import annotations

import pytest

from actors.settings import ActorSettings
from podium.core.settings import ConfigurationError, load_settings


def test_the_limit_defaults_to_hundreds_and_reads_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings(ActorSettings).max_in_flight == 256
    monkeypatch.setenv("PODIUM_ACTOR_MAX_IN_FLIGHT", "32")
    assert load_settings(ActorSettings).max_in_flight == 32
    monkeypatch.setenv("PODIUM_ACTOR_MAX_IN_FLIGHT", "0")
    with pytest.raises(ConfigurationError, match="PODIUM_ACTOR_MAX_IN_FLIGHT"):
        load_settings(ActorSettings)


def test_the_replaced_concurrency_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_ACTOR_CONCURRENCY", "4")
    with pytest.raises(ConfigurationError, match="PODIUM_ACTOR_MAX_IN_FLIGHT"):
        load_settings(ActorSettings)
