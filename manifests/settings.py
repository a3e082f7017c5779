"""`PODIUM_SEALING_*`: the public key `podium apply` seals Secret values to.

Only the public half: whoever applies manifests can seal, and only the services that hold the
private half (`PODIUM_ACTOR_SEALING_KEY`, ...) can open. On the dev stack the composition root
(`podium.environment`) supplies the key `podium stack up` made when neither is set."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SealingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PODIUM_SEALING_", extra="forbid")

    public_key: str | None = Field(
        default=None,
        description="the services' X25519 sealing public key (base64 of 32 bytes) that "
        "`podium apply` seals Secret values to",
    )
    public_key_file: Path | None = Field(default=None, description="a file holding public_key")

    @model_validator(mode="after")
    def _one_source(self) -> SealingSettings:
        if self.public_key is not None and self.public_key_file is not None:
            raise ValueError("set PODIUM_SEALING_PUBLIC_KEY or PODIUM_SEALING_PUBLIC_KEY_FILE")
        return self
