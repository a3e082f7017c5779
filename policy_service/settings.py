"""`PODIUM_POLICY_*`: the settings of the policy service and of its requesters (the HMAC key)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from podium.core.settings import ConfigurationError

HMAC_KEY_ENV = "PODIUM_POLICY_HMAC_KEY"


class PolicySettings(BaseSettings):
    """Settings of `podium policy`. The HMAC key is shared with every actor."""

    model_config = SettingsConfigDict(env_prefix="PODIUM_POLICY_", extra="forbid")

    hmac_key: str = Field(
        default="",
        description="Key that signs decisions (HMAC-SHA256); the local stack's key when unset",
    )
    approval_ttl_s: float = Field(
        default=3600.0, gt=0, description="An approval not decided within this expires as denied"
    )
    expiry_interval_s: float = Field(
        default=1.0, gt=0, le=3600, description="How often pending approvals are checked"
    )
    fetch_max_wait_ms: int = Field(
        default=5, ge=0, le=500, description="Longest idle fetch wait of the request consumer"
    )
    instance_id: str = Field(
        default="", description="Name of this replica (transactional ids); random when empty"
    )


def resolve_hmac_key(settings: PolicySettings) -> bytes:
    """The decision-signing key (`PODIUM_POLICY_HMAC_KEY`; the composition root supplies the
    local stack's dev key when it is unset).

    Used by the policy service and by every requester (actors), so both sides read one source.
    """
    if settings.hmac_key:
        return settings.hmac_key.encode()
    raise ConfigurationError(
        f"{HMAC_KEY_ENV}: no key to sign policy decisions; set {HMAC_KEY_ENV} "
        "(the same value for the policy service and every actor), or start the local stack "
        "with `podium stack up`"
    )
