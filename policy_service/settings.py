"""`PODIUM_POLICY_*`: the settings of the policy service and of its requesters (the keys).

The policy service alone holds the private signing key (`PODIUM_POLICY_SIGNING_KEY`, or
`PODIUM_POLICY_SIGNING_KEY_FILE`); requesters hold the public keys only
(`PODIUM_POLICY_VERIFY_KEYS`). The deciders of approvals (the ledger API, the operator's
`podium approve|deny`) sign their decisions with an approver key (`PODIUM_APPROVER_SIGNING_KEY`,
or `..._FILE`), whose public half the policy service trusts (`PODIUM_POLICY_APPROVER_KEYS`).
Formats and key generation: `policy_service/keys.py`.
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
APPROVER_KEYS_ENV = "PODIUM_POLICY_APPROVER_KEYS"
APPROVER_SIGNING_KEY_ENV = "PODIUM_APPROVER_SIGNING_KEY"
APPROVER_SIGNING_KEY_FILE_ENV = "PODIUM_APPROVER_SIGNING_KEY_FILE"
MAX_APPROVER_KEYS = 4
"""Two approvers (the ledger API's and the operator's), each with its next key in a rotation."""
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
    approver_keys: str = Field(
        default="",
        description="Public keys of the approvers whose decisions count, `<key id>=<base64>,...` "
        f"(at most {MAX_APPROVER_KEYS}); the local stack's dev approver key when unset",
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


def _key_text(text: str, file: Path | None, variable: str, file_variable: str) -> tuple[str, str]:
    """The key's text from the setting or its file, and the name to put in errors."""
    if file is None:
        return text, variable
    if text:
        raise ConfigurationError(f"{variable} and {file_variable} are both set; set one")
    where = f"{file_variable} ({file})"
    try:
        return file.read_text().strip(), where
    except OSError as exc:
        raise ConfigurationError(f"{where}: cannot read it: {exc.strerror}") from None


def _signing_key(text: str, variable: str, *, dev_stack: bool) -> SigningKey:
    try:
        key = parse_signing_key(text)
    except KeyFormatError as exc:
        raise ConfigurationError(f"{variable}: {exc}") from None
    if key.is_dev and not dev_stack:
        raise _dev_refused(variable, key.key_id)
    return key


def resolve_signing_key(settings: PolicySettings, *, dev_stack: bool) -> SigningKey:
    """The policy service's signing key; refuses a missing or malformed key, and a development
    key unless the composition root says the service runs on the local stack (`dev_stack`)."""
    text, variable = _key_text(
        settings.signing_key.get_secret_value(),
        settings.signing_key_file,
        SIGNING_KEY_ENV,
        SIGNING_KEY_FILE_ENV,
    )
    if not text:
        raise ConfigurationError(
            f"{SIGNING_KEY_ENV}: no key to sign policy decisions; set {SIGNING_KEY_ENV} or "
            f"{SIGNING_KEY_FILE_ENV} (make a key pair with `{_KEYGEN}`), or start the local "
            "stack with `podium stack up`"
        )
    return _signing_key(text, variable, dev_stack=dev_stack)


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


def resolve_approver_keys(settings: PolicySettings, *, dev_stack: bool) -> dict[str, VerifyKey]:
    """The approvers' public keys ({} when none is set: then no person's decision counts, and
    an approval can only expire)."""
    if not settings.approver_keys.strip():
        return {}
    try:
        keys = parse_verify_keys(settings.approver_keys, at_most=MAX_APPROVER_KEYS)
    except KeyFormatError as exc:
        raise ConfigurationError(f"{APPROVER_KEYS_ENV}: {exc}") from None
    for key in keys.values():
        if key.is_dev and not dev_stack:
            raise _dev_refused(APPROVER_KEYS_ENV, key.key_id)
    return keys


def resolve_decision_keys(settings: PolicySettings, *, dev_stack: bool) -> dict[str, VerifyKey]:
    """Every key whose approval decisions count: the approvers' and the policy service's own
    (it signs the expiries)."""
    return {
        **resolve_approver_keys(settings, dev_stack=dev_stack),
        **resolve_verify_keys(settings, dev_stack=dev_stack),
    }


class ApproverSettings(BaseSettings):
    """The approver key of a decider of approvals (the ledger API, `podium approve|deny`)."""

    model_config = SettingsConfigDict(env_prefix="PODIUM_APPROVER_", extra="forbid")

    signing_key: SecretStr = Field(
        default=SecretStr(""),
        description="The approver's Ed25519 private key, `<key id>=<base64>`; the local stack's "
        "dev approver key when unset",
    )
    signing_key_file: Path | None = Field(
        default=None, description="A file holding the approver key (instead of signing_key)"
    )


def resolve_approver_signing_key(settings: ApproverSettings, *, dev_stack: bool) -> SigningKey:
    """The key a decider signs approval decisions with; the same refusals as the policy key's."""
    text, variable = _key_text(
        settings.signing_key.get_secret_value(),
        settings.signing_key_file,
        APPROVER_SIGNING_KEY_ENV,
        APPROVER_SIGNING_KEY_FILE_ENV,
    )
    if not text:
        raise ConfigurationError(
            f"{APPROVER_SIGNING_KEY_ENV}: no key to sign approval decisions with; set "
            f"{APPROVER_SIGNING_KEY_ENV} or {APPROVER_SIGNING_KEY_FILE_ENV} (make a key pair with "
            f"`{_KEYGEN}` and give its public half to the policy service as {APPROVER_KEYS_ENV}), "
            "or start the local stack with `podium stack up`"
        )
    return _signing_key(text, variable, dev_stack=dev_stack)
