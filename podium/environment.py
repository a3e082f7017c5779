"""Where the services find Kafka, PostgreSQL, their keys and the ledger API: settings from the
environment, with what the local stack (`podium stack up`) recorded as the defaults.

Half of the composition root, kept apart from the service builders (`podium.composition`) so
that commands which only need an address or a client (`podium logs`, `spend`, `apply`, ...)
do not import every service. With `podium.composition`, the only reader of the stack's state
file: when `PODIUM_KAFKA_BOOTSTRAP`, `PODIUM_DATABASE_URL`, `PODIUM_POLICY_SIGNING_KEY`,
`PODIUM_POLICY_VERIFY_KEYS`, `PODIUM_POLICY_APPROVER_KEYS`, `PODIUM_APPROVER_SIGNING_KEY`,
`PODIUM_LEDGER_ANCHOR_KEY(_FILE)`, `PODIUM_SEALING_PUBLIC_KEY(_FILE)`,
`PODIUM_ACTOR_SEALING_KEY(_FILE)` or `PODIUM_API_URL` are unset, the addresses and the dev keys
`podium stack up` recorded are the defaults. A dev decision key
(id `dev-...`) is accepted only when Kafka is the local stack's (`on_dev_stack`).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from pydantic import SecretStr

from actors.settings import ActorSettings
from ledger.anchors import (
    AnchorSigner,
    new_private_hex,
    private_key_from_hex,
    public_key_from_hex,
    read_key_file,
)
from ledger.client import LedgerClient
from ledger.settings import LedgerSettings
from manifests.sealing import load_private_key, load_public_key
from manifests.settings import SealingSettings
from podium.core.errors import PermanentError
from podium.core.settings import DatabaseSettings, KafkaSettings, load_settings
from podium.stack import credentials
from podium.stack.state import load_state, save_state, stack_dir, state_file
from policy_service.settings import (
    APPROVER_SIGNING_KEY_FILE_ENV,
    SIGNING_KEY_FILE_ENV,
    ApproverSettings,
    PolicySettings,
)
from topics.acls import Role
from topics.names import TopicNames

API_URL_ENV = "PODIUM_API_URL"
API_TOKEN_ENV = "PODIUM_API_TOKEN"


# --- settings, with the local stack's addresses as defaults ----------------------------------


_SASL_ENV = (
    "PODIUM_KAFKA_SECURITY_PROTOCOL",
    "PODIUM_KAFKA_SASL_MECHANISM",
    "PODIUM_KAFKA_SASL_USERNAME",
    "PODIUM_KAFKA_SASL_PASSWORD",
    "PODIUM_KAFKA_SASL_PASSWORD_FILE",
)


def kafka_settings(role: Role = "operator", *, agent: str | None = None) -> KafkaSettings:
    """`PODIUM_KAFKA_*`; on the local stack, when no SASL variable is set, as `role`'s own
    principal (`podium-<role>`, its password file in the stack's `secrets/`). The command line
    is the `operator`; each service passes its role. An actor serving only `agent` connects as
    that agent's principal when the stack has made one (`podium stack agent-users`)."""
    state = load_state()
    defaults: dict[str, object] = {}
    kafka = state.kafka
    if kafka is not None:
        defaults["bootstrap"] = kafka.bootstrap
        on_stack = os.environ.get("PODIUM_KAFKA_BOOTSTRAP", kafka.bootstrap) == kafka.bootstrap
        if kafka.sasl and on_stack and not any(name in os.environ for name in _SASL_ENV):
            user = credentials.kafka_username(role)
            if (
                agent is not None
                and credentials.password_file(credentials.agent_username(agent)).exists()
            ):
                user = credentials.agent_username(agent)
            defaults.update(
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism=credentials.SASL_MECHANISM,
                sasl_username=user,
                sasl_password_file=credentials.password_file(user),
            )
    return load_settings(KafkaSettings, **defaults)


def admin_kafka_settings() -> KafkaSettings:
    """On the local stack (no SASL variable set), its admin: a super user, for tools that make
    topics under prefixes of their own (the benchmarks); elsewhere `kafka_settings()`."""
    settings = kafka_settings()
    state = load_state()
    if settings.sasl_username == credentials.kafka_username("operator") and state.kafka:
        password = credentials.read_password(credentials.ADMIN_USER)
        if password is not None:
            return settings.with_credentials(credentials.ADMIN_USER, password)
    return settings


def database_settings() -> DatabaseSettings:
    state = load_state()
    defaults = {"url": state.postgres.dsn} if state.postgres else {}
    return load_settings(DatabaseSettings, **defaults)


def policy_settings() -> PolicySettings:
    """`PODIUM_POLICY_*`, with the local stack's dev key pair as the default keys."""
    state = load_state()
    defaults: dict[str, str] = {}
    if state.policy_signing_key and SIGNING_KEY_FILE_ENV not in os.environ:
        defaults["signing_key"] = state.policy_signing_key
    if state.policy_verify_key:
        defaults["verify_keys"] = state.policy_verify_key
    if state.approver_verify_key:
        defaults["approver_keys"] = state.approver_verify_key
    return load_settings(PolicySettings, **defaults)


def approver_settings() -> ApproverSettings:
    """`PODIUM_APPROVER_*`, with the local stack's dev approver key as the default."""
    state = load_state()
    defaults: dict[str, str] = {}
    if state.approver_signing_key and APPROVER_SIGNING_KEY_FILE_ENV not in os.environ:
        defaults["signing_key"] = state.approver_signing_key
    return load_settings(ApproverSettings, **defaults)


def on_dev_stack(kafka: KafkaSettings) -> bool:
    """True when `kafka` is the broker the local stack runs (the only place for dev keys)."""
    state = load_state()
    return state.kafka is not None and kafka.bootstrap == state.kafka.bootstrap


def anchor_signer(settings: LedgerSettings) -> AnchorSigner:
    """The key the ledger signs its anchors with: `PODIUM_LEDGER_ANCHOR_KEY`, else the file
    `PODIUM_LEDGER_ANCHOR_KEY_FILE` names, else the dev stack's key (made when missing).
    Outside the dev stack a missing key stops the service."""
    if settings.anchor_key is not None:
        text, what = settings.anchor_key.get_secret_value(), "PODIUM_LEDGER_ANCHOR_KEY"
    elif settings.anchor_key_file is not None:
        text = read_key_file(settings.anchor_key_file)
        what = f"PODIUM_LEDGER_ANCHOR_KEY_FILE {settings.anchor_key_file}"
    elif state_file().exists():
        state = load_state()
        if state.ledger_anchor_key is None:
            state.ledger_anchor_key = new_private_hex()
            save_state(state)
        text, what = state.ledger_anchor_key, f"ledger_anchor_key of {state_file()}"
    else:
        raise PermanentError(
            "the ledger has no key to sign its anchors: set PODIUM_LEDGER_ANCHOR_KEY (64 hex "
            "digits of an Ed25519 private key, e.g. from `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`) or PODIUM_LEDGER_ANCHOR_KEY_FILE"
        )
    return AnchorSigner(private_key_from_hex(text, what=what))


def anchor_public_key(settings: LedgerSettings) -> Ed25519PublicKey:
    """What `podium audit verify` checks anchors with: `PODIUM_LEDGER_ANCHOR_PUBLIC_KEY`, else
    the public half of `anchor_signer`'s key."""
    if settings.anchor_public_key is not None:
        return public_key_from_hex(
            settings.anchor_public_key, what="PODIUM_LEDGER_ANCHOR_PUBLIC_KEY"
        )
    return anchor_signer(settings).private.public_key()


def sealing_public_key(kafka: KafkaSettings) -> X25519PublicKey | None:
    """What `podium apply` seals Secret values to: `PODIUM_SEALING_PUBLIC_KEY(_FILE)`, else, on
    the dev stack, the public half of the pair `podium stack up` made; None when neither."""
    settings = load_settings(SealingSettings)
    if settings.public_key is not None:
        return load_public_key(settings.public_key, what="PODIUM_SEALING_PUBLIC_KEY")
    path = settings.public_key_file
    what = f"PODIUM_SEALING_PUBLIC_KEY_FILE {path}"
    if path is None and on_dev_stack(kafka) and credentials.sealing_public_key_file().exists():
        path = credentials.sealing_public_key_file()
        what = str(path)
    return load_public_key(_read_key(path, what), what=what) if path is not None else None


def actor_sealing_key(settings: ActorSettings, kafka: KafkaSettings) -> X25519PrivateKey | None:
    """What an actor opens sealed Secrets with: `PODIUM_ACTOR_SEALING_KEY(_FILE)`, else, on the
    dev stack, the private key `podium stack up` made; None when neither (a model call that
    needs a Secret then fails, naming the setting)."""
    return _sealing_key(
        settings.sealing_key, settings.sealing_key_file, "PODIUM_ACTOR_SEALING_KEY", kafka
    )


def actor_memory_database_url(settings: ActorSettings, kafka: KafkaSettings) -> str | None:
    """The DSN of the postgres Memories that name no `endpoint`: `PODIUM_ACTOR_MEMORY_DATABASE_URL`,
    else, on the dev stack, the stack's database (the entries in their own schema)."""
    if settings.memory_database_url is not None:
        return settings.memory_database_url.get_secret_value()
    state = load_state()
    if on_dev_stack(kafka) and state.postgres is not None:
        return state.postgres.dsn
    return None


def ledger_sealing_key(settings: LedgerSettings, kafka: KafkaSettings) -> X25519PrivateKey | None:
    """What the ledger opens the Secrets of TaskWebhooks with: `PODIUM_LEDGER_SEALING_KEY(_FILE)`,
    else, on the dev stack, the private key `podium stack up` made; None when neither (a
    delivery then answers 400, naming the setting)."""
    return _sealing_key(
        settings.sealing_key, settings.sealing_key_file, "PODIUM_LEDGER_SEALING_KEY", kafka
    )


def _sealing_key(
    value: SecretStr | None, file: Path | None, variable: str, kafka: KafkaSettings
) -> X25519PrivateKey | None:
    if value is not None:
        return load_private_key(value.get_secret_value(), what=variable)
    path, what = file, f"{variable}_FILE {file}"
    if path is None and on_dev_stack(kafka) and credentials.sealing_key_file().exists():
        path = credentials.sealing_key_file()
        what = str(path)
    return load_private_key(_read_key(path, what), what=what) if path is not None else None


def _read_key(path: Path, what: str) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise PermanentError(f"{what}: {exc.strerror}") from None


def topic_names(kafka: KafkaSettings) -> TopicNames:
    return TopicNames(kafka.topic_prefix)


# --- the ledger API's address and token (the command line's client) ---------------------------


def api_token_file() -> Path:
    return stack_dir() / "api-token"


def save_api_token(token: str) -> Path:
    """Write a token where `ledger_client` finds it (mode 600)."""
    path = api_token_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    path.chmod(0o600)
    return path


def ledger_client() -> LedgerClient:
    """`PODIUM_API_URL` (else the URL `podium ledger` recorded in the stack's state file) and
    `PODIUM_API_TOKEN` (else the token `podium token create --save` wrote)."""
    url = os.environ.get(API_URL_ENV) or load_state().api_url
    if not url:
        raise PermanentError(
            f"the ledger API is not known: set {API_URL_ENV}, or start `podium ledger` on the "
            "local stack (it records its URL)"
        )
    token = os.environ.get(API_TOKEN_ENV, "")
    if not token and api_token_file().exists():
        token = api_token_file().read_text().strip()
    if not token:
        raise PermanentError(
            f"no API token: set {API_TOKEN_ENV}, or run `podium token create --scope audit:read "
            "--scope spend:read --save`"
        )
    return LedgerClient(url.rstrip("/"), token)


def record_api_url(url: str) -> None:
    """The dev stack's state file learns where the API listens (when there is a dev stack)."""
    if state_file().exists():
        state = load_state()
        state.api_url = url
        save_state(state)
