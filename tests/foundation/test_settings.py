"""A bad setting stops with a message that names the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.core.settings import ConfigurationError, KafkaSettings, load_settings
from podium.environment import kafka_settings
from podium.stack import StackSettings


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv("PODIUM_KAFKA_PARTITIONS", "zero")
    with pytest.raises(ConfigurationError, match="PODIUM_KAFKA_PARTITIONS"):
        load_settings(KafkaSettings)


def test_out_of_range_port_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_STACK_POSTGRES_PORT", "80")
    with pytest.raises(ConfigurationError, match="PODIUM_STACK_POSTGRES_PORT"):
        load_settings(StackSettings)


def test_missing_broker_says_how_to_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PODIUM_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setenv("PODIUM_STACK_DIR", str(tmp_path))
    with pytest.raises(ConfigurationError, match=r"PODIUM_KAFKA_BOOTSTRAP.*podium stack up"):
        kafka_settings()


def test_settings_never_read_the_stack_state_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Only the composition root knows the dev stack: a state file is invisible to settings."""
    (tmp_path / "stack.json").write_text(
        '{"kafka": {"bootstrap": "127.0.0.1:1", "pid": 1, "port": 1, "controller_port": 2,'
        ' "version": "4.1.1", "data_dir": "x"}}'
    )
    monkeypatch.delenv("PODIUM_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.setenv("PODIUM_STACK_DIR", str(tmp_path))
    with pytest.raises(ConfigurationError, match="PODIUM_KAFKA_BOOTSTRAP"):
        load_settings(KafkaSettings)
    assert kafka_settings().bootstrap == "127.0.0.1:1"
    monkeypatch.setenv("PODIUM_KAFKA_BOOTSTRAP", "127.0.0.1:2")
    assert kafka_settings().bootstrap == "127.0.0.1:2"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_STACK_KAFKA_PORT", "29092")
    assert load_settings(StackSettings).kafka_port == 29092
