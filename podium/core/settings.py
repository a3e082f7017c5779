"""Settings shared by every service: where Kafka and PostgreSQL are.

Each service adds its own settings class beside its code (`PODIUM_POLICY_`, `PODIUM_LEDGER_`, ...).
All are loaded once at start, by the composition root (`podium.composition`), and passed down; a
bad value stops the service with a message that names the variable (see `load_settings`). Nothing
here reads the dev stack's state file: the composition root supplies its addresses as defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(Exception):
    """A setting is missing or invalid; the message names the variable and the fix."""


class KafkaSettings(BaseSettings):
    """`PODIUM_KAFKA_*`: the cluster, and the SASL/TLS settings of a production cluster."""

    model_config = SettingsConfigDict(env_prefix="PODIUM_KAFKA_", extra="forbid")

    bootstrap: str = Field(
        default="", description="host:port[,host:port]; the local stack's broker when unset"
    )
    topic_prefix: str = Field(default="podium", pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(default=12, ge=1, description="partitions of topics Podium creates")
    replication_factor: int = Field(default=1, ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    sasl_password_file: Path | None = Field(
        default=None, description="a file holding the SASL password (instead of SASL_PASSWORD)"
    )
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    @model_validator(mode="after")
    def _has_a_broker(self) -> KafkaSettings:
        if not self.bootstrap:
            raise ValueError(
                "no Kafka broker is configured: set PODIUM_KAFKA_BOOTSTRAP, "
                "or start the local stack with `podium stack up`"
            )
        if self.sasl_password_file is not None:
            if self.sasl_password is not None:
                raise ValueError(
                    "set PODIUM_KAFKA_SASL_PASSWORD or PODIUM_KAFKA_SASL_PASSWORD_FILE, not both"
                )
            try:
                self.sasl_password = self.sasl_password_file.read_text().strip()
            except OSError as exc:
                raise ValueError(
                    f"PODIUM_KAFKA_SASL_PASSWORD_FILE {self.sasl_password_file}: {exc.strerror}"
                ) from None
        if self.security_protocol.startswith("SASL_"):
            if self.sasl_mechanism is None:
                raise ValueError(
                    f"security protocol {self.security_protocol} needs PODIUM_KAFKA_SASL_MECHANISM"
                )
            if self.sasl_mechanism != "OAUTHBEARER" and not (
                self.sasl_username and self.sasl_password
            ):
                raise ValueError(
                    f"SASL {self.sasl_mechanism} needs PODIUM_KAFKA_SASL_USERNAME and "
                    "PODIUM_KAFKA_SASL_PASSWORD (or PODIUM_KAFKA_SASL_PASSWORD_FILE)"
                )
        elif self.sasl_mechanism is not None:
            raise ValueError(
                f"PODIUM_KAFKA_SASL_MECHANISM is set but the security protocol is "
                f"{self.security_protocol}: set PODIUM_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT "
                "or SASL_SSL"
            )
        return self

    def with_credentials(self, username: str, password: str) -> KafkaSettings:
        """The same cluster and prefix, as another SCRAM-SHA-512 principal."""
        return self.model_copy(
            update={
                "security_protocol": "SASL_PLAINTEXT"
                if self.security_protocol in ("PLAINTEXT", "SASL_PLAINTEXT")
                else "SASL_SSL",
                "sasl_mechanism": self.sasl_mechanism or "SCRAM-SHA-512",
                "sasl_username": username,
                "sasl_password": password,
                "sasl_password_file": None,
            }
        )

    def as_env(self) -> dict[str, str]:
        """The `PODIUM_KAFKA_*` variables that make a child process use these settings: the
        cluster, the topic prefix, the partitions and the principal."""
        env = {
            "PODIUM_KAFKA_BOOTSTRAP": self.bootstrap,
            "PODIUM_KAFKA_TOPIC_PREFIX": self.topic_prefix,
            "PODIUM_KAFKA_PARTITIONS": str(self.partitions),
            "PODIUM_KAFKA_SECURITY_PROTOCOL": self.security_protocol,
        }
        if self.sasl_mechanism:
            env["PODIUM_KAFKA_SASL_MECHANISM"] = self.sasl_mechanism
        if self.sasl_username:
            env["PODIUM_KAFKA_SASL_USERNAME"] = self.sasl_username
        if self.sasl_password:
            env["PODIUM_KAFKA_SASL_PASSWORD"] = self.sasl_password
        return env


class DatabaseSettings(BaseSettings):
    """`PODIUM_DATABASE_URL`: the PostgreSQL DSN; defaults to the local stack's cluster."""

    model_config = SettingsConfigDict(env_prefix="PODIUM_DATABASE_", extra="forbid")

    url: str = Field(
        default="", description="postgresql://user@host:port/db; the local stack's when unset"
    )

    @model_validator(mode="after")
    def _has_a_database(self) -> DatabaseSettings:
        if not self.url:
            raise ValueError(
                "no PostgreSQL database is configured: set PODIUM_DATABASE_URL, "
                "or start the local stack with `podium stack up`"
            )
        return self


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings(cls: type[SettingsT], **defaults: Any) -> SettingsT:
    """Load a settings class, turning pydantic's error into one line per bad variable.

    `defaults` apply to fields whose variable is not set (the environment wins over them).
    """
    prefix = str(cls.model_config.get("env_prefix", ""))
    unset = {k: v for k, v in defaults.items() if f"{prefix}{k}".upper() not in os.environ}
    try:
        return cls(**unset)
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        aliases = {field.alias for field in cls.model_fields.values() if field.alias}
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            if not field:
                name = cls.__name__
            elif field in aliases:
                name = field.upper()  # an alias is already the whole variable name
            else:
                name = f"{prefix}{field}".upper()
            problems.append(f"{name}: {error['msg']}")
        raise ConfigurationError("; ".join(problems)) from None
