"""`PODIUM_LEDGER_*`: the ledger service's own settings (the DSN comes from `DatabaseSettings`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class LedgerSettings(BaseSettings):
    """Settings of `podium ledger`, loaded once at start with `load_settings(LedgerSettings)`."""

    model_config = SettingsConfigDict(
        env_prefix="PODIUM_LEDGER_", extra="forbid", populate_by_name=True
    )

    api_host: str = Field(default="127.0.0.1", description="address the HTTP API binds to")
    api_port: int = Field(default=18080, ge=0, le=65535, description="0 picks a free port")
    batch_size: int = Field(default=5000, ge=1, le=100_000, description="events per DB write")
    flush_interval_s: float = Field(
        default=0.2, gt=0, le=60, description="longest wait before a partial batch is written"
    )
    schema_name: str = Field(
        default="podium",
        alias="PODIUM_LEDGER_SCHEMA",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema that holds the ledger's tables",
    )
    writers: int = Field(
        default=2,
        ge=1,
        le=16,
        description="transactions that store one batch concurrently, each for its own tasks",
    )
    pool_size: int = Field(default=4, ge=1, le=100, description="database connections")
    reconnect_max_s: float = Field(
        default=2.0, gt=0, le=60, description="longest pause between reconnection attempts"
    )
    anchor_key: SecretStr | None = Field(
        default=None,
        description="Ed25519 private key (64 hex digits) that signs the chain heads the ledger "
        "anchors in Kafka; required outside the dev stack (or anchor_key_file)",
    )
    anchor_key_file: Path | None = Field(
        default=None, description="a file holding anchor_key (64 hex digits)"
    )
    anchor_public_key: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="the anchors' Ed25519 public key (64 hex digits), all `podium audit verify` "
        "needs; derived from anchor_key when unset",
    )
    sealing_key: SecretStr | None = Field(
        default=None,
        description="the X25519 private key (base64 of 32 bytes) that opens the Secrets of "
        "TaskWebhooks (auth.secret_ref), the actors' sealing key; the dev stack's when unset there",
    )
    sealing_key_file: Path | None = Field(default=None, description="a file holding sealing_key")
    anchor_interval_s: float = Field(
        default=5.0, gt=0, le=3600, description="how often the chain heads are signed and published"
    )

    @model_validator(mode="after")
    def _one_sealing_key(self) -> LedgerSettings:
        if self.sealing_key is not None and self.sealing_key_file is not None:
            raise ValueError("set PODIUM_LEDGER_SEALING_KEY or PODIUM_LEDGER_SEALING_KEY_FILE")
        return self
