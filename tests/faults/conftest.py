"""Fixtures of the fault scenarios: a `Cluster` of `podium` processes on the test's prefix."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.core.settings import KafkaSettings
from tests.faults.cluster import Cluster


@pytest.fixture
def cluster(
    kafka_settings: KafkaSettings, database_url: str, pg_schema: str, tmp_path: Path
) -> Iterator[Cluster]:
    """Processes on the test's topic prefix; the ledger's tables go in `pg_schema`."""
    home = tmp_path / "cluster"
    home.mkdir()
    running = Cluster(kafka_settings, database_url, home, ledger_schema=pg_schema)
    try:
        yield running
    finally:
        running.close()
