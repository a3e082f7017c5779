"""`PODIUM_POLICY_*`: the settings of the policy service and of its requesters (the keys).

The policy service alone holds the private signing key (`PODIUM_POLICY_SIGNING_KEY`, or
`PODIUM_POLICY_SIGNING_KEY_FILE`); requesters hold the public keys only
(`PODIUM_POLICY_VERIFY_KEYS`). Formats and key generation: `policy_service/keys.py`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from podium.core.settings import ConfigurationError
from policy_service.keys import (
    DEV_KEY_PREFIX,
    KeyFormatError,
    SigningKey,
    VerifyKey,
    parse_signing_key,
    parse_verify_keys,
)

SIGNING_KEY_ENV = "PODIUM_POLICY_SIGNING_KEY"
SIGNING_KEY_FILE_ENV = "PODIUM_POLICY_SIGNING_KEY_FILE"
VERIFY_KEYS_ENV = "PODIUM_POLICY_VERIFY_KEYS"
_KEYGEN = "python -m policy_service.keys <key id>"


class PolicySettings(BaseSettings):
    """Settings of `podium policy`, and the public keys of its requesters."""

    model_config = SettingsConfigDict(env_prefix="PODIUM_POLICY_", extra="forbid")

    signing_key: SecretStr = Field(
        default=SecretStr(""),
        description="The service's Ed25519 private key, `<key id>=<base64>`; the policy service "
        "only; the local stack's dev key when unset",
    )
    signing_key_file: Path | None = Field(
        default=None, description="A file holding the signing key (instead of signing_key)"
    )
    verify_keys: str = Field(
        default="",
        description="Public keys requesters accept, `<key id>=<base64>[,<key id>=<base64>]` (two "
        "during a rotation); the local stack's dev key when unset",
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
    reply_send_timeout_s: float = Field(
        default=2.0,
        gt=0,
        le=30,
        description="Longest wait to hand a reply to Kafka (e.g. a reply topic that does not "
        "exist); then the reply is dropped and the requester denies at its deadline",
    )
    instance_id: str = Field(
        default="", description="Name of this replica (transactional ids); random when empty"
    )


def _dev_refused(variable: str, key_id: str) -> ConfigurationError:
    return ConfigurationError(
        f"{variable}: key {key_id!r} is the local stack's development key (ids {DEV_KEY_PREFIX}*) "
        f"and Kafka is not the local stack's; make a key pair with `{_KEYGEN}`"
    )


def resolve_signing_key(settings: PolicySettings, *, dev_stack: bool) -> SigningKey:
    """The policy service's signing key; refuses a missing or malformed key, and a development
    key unless the composition root says the service runs on the local stack (`dev_stack`)."""
    text = settings.signing_key.get_secret_value()
    variable = SIGNING_KEY_ENV
    if settings.signing_key_file is not None:
        if text:
            raise ConfigurationError(
                f"{SIGNING_KEY_ENV} and {SIGNING_KEY_FILE_ENV} are both set; set one"
            )
        variable = f"{SIGNING_KEY_FILE_ENV} ({settings.signing_key_file})"
        try:
            text = settings.signing_key_file.read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"{variable}: cannot read it: {exc.strerror}") from None
    if not text:
        raise ConfigurationError(
            f"{SIGNING_KEY_ENV}: no key to sign policy decisions; set {SIGNING_KEY_ENV} or "
            f"{SIGNING_KEY_FILE_ENV} (make a key pair with `{_KEYGEN}`), or start the local "
            "stack with `podium stack up`"
        )
    try:
        key = parse_signing_key(text)
    except KeyFormatError as exc:
        raise ConfigurationError(f"{variable}: {exc}") from None
    if key.is_dev and not dev_stack:
        raise _dev_refused(variable, key.key_id)
    return key


def resolve_verify_keys(settings: PolicySettings, *, dev_stack: bool) -> dict[str, VerifyKey]:
    """The public keys a requester accepts (at most two); the same refusals as the signing
    key's."""
    if not settings.verify_keys.strip():
        raise ConfigurationError(
            f"{VERIFY_KEYS_ENV}: no public key to check policy decisions with; set "
            f"{VERIFY_KEYS_ENV} to the policy service's public key(s), or start the local stack "
            "with `podium stack up`"
        )
    try:
        keys = parse_verify_keys(settings.verify_keys)
    except KeyFormatError as exc:
        raise ConfigurationError(f"{VERIFY_KEYS_ENV}: {exc}") from None
    for key in keys.values():
        if key.is_dev and not dev_stack:
            raise _dev_refused(VERIFY_KEYS_ENV, key.key_id)
    return keys
