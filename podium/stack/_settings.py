"""`PODIUM_STACK_*`: ports, versions and deadlines of the local development stack."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from podium.stack.state import stack_dir

KAFKA_VERSION = "4.1.1"
"""The Apache Kafka release the local stack runs (jars from Maven Central)."""


class StackSettings(BaseSettings):
    """Settings of `podium stack up`; every field can be set as `PODIUM_STACK_<FIELD>`.

    The stack's folder itself is `PODIUM_STACK_DIR` (see `podium.stack.state.stack_dir`).
    """

    model_config = SettingsConfigDict(env_prefix="PODIUM_STACK_", extra="forbid")

    kafka_version: str = Field(default=KAFKA_VERSION, pattern=r"^\d+\.\d+\.\d+$")
    kafka_port: int = Field(default=19092, ge=1024, le=65535)
    kafka_controller_port: int = Field(default=19093, ge=1024, le=65535)
    kafka_heap_mb: int = Field(default=512, ge=256, description="maximum heap of the broker (MB)")
    postgres_port: int = Field(default=15432, ge=1024, le=65535)
    postgres_database: str = Field(default="podium", pattern=r"^[a-z_][a-z0-9_]*$")
    postgres_user: str = Field(
        default="nobody", description="the unprivileged OS user that runs PostgreSQL under root"
    )
    cache_dir: Path | None = Field(
        default=None, description="where Kafka jars are cached; defaults to <stack dir>/cache"
    )
    ready_timeout_s: float = Field(default=180.0, gt=0)
    stop_timeout_s: float = Field(default=30.0, gt=0)

    def jar_cache(self) -> Path:
        return (self.cache_dir or stack_dir() / "cache").resolve()
