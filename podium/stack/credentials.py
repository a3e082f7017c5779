"""The local stack's credentials: a SCRAM user per service role, the broker's admin, PostgreSQL.

Each password is a file of its own under `<stack dir>/secrets/` (folder 0700, files 0600), made
once by `podium stack up`, and so is the services' sealing key pair (`sealing.key` and
`sealing.pub`: what the actors open Secret values with, and what `podium apply` seals them to).
The composition root (`podium.environment`) reads them to give each role its own principal on
the local stack; a service elsewhere takes its credentials from its settings
(`PODIUM_KAFKA_SASL_USERNAME`, `PODIUM_KAFKA_SASL_PASSWORD(_FILE)`, `PODIUM_ACTOR_SEALING_KEY`).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from podium.core.settings import KafkaSettings
from podium.stack.state import stack_dir
from topics.acls import ROLES, Role, agent_user, role_user

ADMIN_USER = "podium-admin"
"""The broker's own principal (inter-broker traffic) and the stack's admin: the only super user
besides the controller, used to create the ACLs and by the tests' fixtures."""
CONTROLLER_USER = "controller"
"""The KRaft controller listener's SASL/PLAIN user (the controller quorum only)."""
POSTGRES_USER = "postgres"
SASL_MECHANISM = "SCRAM-SHA-512"


def kafka_username(role: Role) -> str:
    return role_user(role)


AGENT_USER_HEAD = agent_user("")


def agent_username(agent: str) -> str:
    """The principal of the actors serving only `agent` (`podium stack agent-users`)."""
    return agent_user(agent)


def agents_with_users() -> list[str]:
    """The agents given a principal of their own on this stack (their password files)."""
    folder = secrets_dir()
    if not folder.is_dir():
        return []
    suffix = ".password"
    return sorted(
        path.name[len(AGENT_USER_HEAD) : -len(suffix)]
        for path in folder.glob(f"{AGENT_USER_HEAD}*{suffix}")
    )


def ensure_agent_password(agent: str) -> str:
    return _ensure(password_file(agent_username(agent)))


def kafka_users() -> list[str]:
    """Every SCRAM user of the stack: the admin, then one per role."""
    return [ADMIN_USER, *(kafka_username(role) for role in ROLES)]


def secrets_dir() -> Path:
    return stack_dir() / "secrets"


def password_file(user: str) -> Path:
    return secrets_dir() / f"{user}.password"


def postgres_password_file() -> Path:
    return secrets_dir() / "postgres.password"


def _ensure(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_hex(24)  # hex: safe inside JAAS and --add-scram syntax
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def ensure_kafka_credentials() -> dict[str, str]:
    """user -> password for every Kafka user of the stack (the controller's too), made when
    missing."""
    users = [CONTROLLER_USER, *kafka_users()]
    return {user: _ensure(password_file(user)) for user in users}


def ensure_postgres_password() -> str:
    return _ensure(postgres_password_file())


def sealing_key_file() -> Path:
    """The services' sealing private key (opens the Secrets `podium apply` sealed)."""
    return secrets_dir() / "sealing.key"


def sealing_public_key_file() -> Path:
    """Its public half, what `podium apply` seals to."""
    return secrets_dir() / "sealing.pub"


def ensure_sealing_keys() -> None:
    """The dev stack's sealing key pair (files of mode 600), made when missing. An existing
    private key is kept (a new one would leave the Secrets already applied unopenable)."""
    from manifests.sealing import (
        load_private_key,
        new_private_key,
        private_key_text,
        public_key_text,
    )

    private, public = sealing_key_file(), sealing_public_key_file()
    if private.exists():
        key = load_private_key(private.read_text(), what=str(private))
    else:
        key = new_private_key()
        _write_new(private, private_key_text(key))
    if not public.exists():
        _write_new(public, public_key_text(key.public_key()))


def _write_new(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


def fingerprint(passwords: dict[str, str]) -> str:
    """Changes when any password changes (the broker's storage is then formatted anew)."""
    text = "\n".join(f"{user}={passwords[user]}" for user in sorted(passwords))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_password(user: str) -> str | None:
    path = password_file(user)
    return path.read_text().strip() if path.exists() else None


def client_settings(bootstrap: str, user: str, **fields: object) -> KafkaSettings:
    """`KafkaSettings` for the stack's broker as `user` (SASL_PLAINTEXT, SCRAM-SHA-512)."""
    password = read_password(user)
    if password is None:
        raise FileNotFoundError(
            f"{password_file(user)} is missing: run `podium stack up` to make the stack's users"
        )
    return KafkaSettings(
        bootstrap=bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=SASL_MECHANISM,
        sasl_username=user,
        sasl_password=password,
        **fields,  # type: ignore[arg-type]
    )
