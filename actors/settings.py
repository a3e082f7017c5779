"""Settings of the actor runtime (`PODIUM_ACTOR_*`) and of the dispatcher (`PODIUM_DISPATCHER_*`).

Loaded once at start with `podium.core.settings.load_settings` and passed down."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_ALLOWED_SECRET_ENV = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
"""The variables a `ModelEndpoint` may name as `api_key_env` unless the operator says otherwise:
the vendors' own (the examples use them)."""

_ENV_PATTERN = re.compile(r"[A-Za-z0-9_*?]+")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class _TransactionalConsumerSettings(BaseSettings):
    """What every transactional consumer (actor, dispatcher) is bounded by."""

    session_timeout_ms: int = Field(
        default=10000, ge=6000, description="consumer group session timeout"
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=100,
        description="attempts at a record whose handler fails before it goes to the DLQ",
    )
    max_record_bytes: int | None = Field(
        default=None,
        ge=1024,
        description="largest record produced (default: the topic's max.message.bytes)",
    )


SEALING_KEY_SETTING = "PODIUM_ACTOR_SEALING_KEY"
"""The setting that holds the private key an actor opens Secrets with (`sealing_key`)."""


class ActorSettings(_TransactionalConsumerSettings):
    """`PODIUM_ACTOR_*`: how one actor replica consumes and runs steps."""

    model_config = SettingsConfigDict(env_prefix="PODIUM_ACTOR_", extra="forbid")

    max_in_flight: int = Field(
        default=256,
        ge=1,
        le=10_000,
        description="steps held at once (running, or done and not yet committed), over every "
        "partition; at the limit fetching pauses",
    )
    policy_timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="deadline of one policy decision"
    )
    step_retry_attempts: int = Field(
        default=3, ge=1, le=20, description="runs of a step that hits transient errors"
    )
    step_retry_backoff_s: float = Field(
        default=0.5, ge=0, le=60, description="first backoff between step runs (doubles)"
    )
    grace_s: float = Field(
        default=15.0, ge=0, description="how long in-flight steps may finish on stop/revoke"
    )
    max_output_tokens: int = Field(
        default=1024, ge=1, description="output tokens assumed per model call for budgets"
    )

    allowed_secret_env: Annotated[list[str], NoDecode] = Field(
        default=list(DEFAULT_ALLOWED_SECRET_ENV),
        description="comma-separated names or glob patterns (`*`, `?`) of the environment "
        "variables a ModelEndpoint may name as api_key_env; PODIUM_* names are always refused",
    )

    sealing_key: SecretStr | None = Field(
        default=None,
        description="the X25519 private key (base64 of 32 bytes) that opens the Secrets "
        "`podium apply` sealed (auth.secretRef); the dev stack's when unset there",
    )
    sealing_key_file: Path | None = Field(default=None, description="a file holding sealing_key")

    memory_database_url: SecretStr | None = Field(
        default=None,
        description="the PostgreSQL DSN of `postgres`/`pgvector` Memories that name no "
        "`endpoint`; on the dev stack, the stack's database when unset",
    )
    memory_schema: str = Field(
        default="podium_memory",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="the schema of the memory entries in that database",
    )

    python_tool_modules: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="comma-separated modules (a package allows its submodules) whose functions "
        "`type: python` tools may name; empty: every python tool is refused",
    )
    python_tool_memory_mb: int = Field(
        default=1024, ge=64, description="address space of one python tool call (RLIMIT_AS)"
    )
    python_tool_cpu_s: int = Field(
        default=30, ge=1, description="CPU seconds of one python tool call (RLIMIT_CPU)"
    )
    python_tool_workers: int = Field(
        default=4, ge=1, le=64, description="python tool calls running at once (child processes)"
    )

    wasm_module_dir: Path | None = Field(
        default=None,
        description="the folder the `endpoint` of a `type: wasm` tool names its module in "
        "(.wasm or .wat); unset: such tools are refused",
    )
    wasm_module: Path | None = Field(
        default=None,
        description="the module of `type: wasm` tools without an endpoint (Orloj's "
        "--tool-wasm-module)",
    )
    wasm_entrypoint: str = Field(
        default="run", min_length=1, description="the export a wasm tool call runs"
    )
    wasm_max_memory_mb: int = Field(
        default=64, ge=1, le=4096, description="linear memory of one wasm tool call"
    )
    wasm_fuel: int = Field(
        default=0, ge=0, description="instructions (fuel) of one wasm tool call; 0: unbounded"
    )
    wasm_workers: int = Field(
        default=4, ge=1, le=64, description="wasm tool calls running at once (threads)"
    )
    grpc_tool_plaintext: bool = Field(
        default=False, description="call `type: grpc` tools without TLS (default TLS)"
    )
    webhook_tool_poll_interval_s: float = Field(
        default=2.0, gt=0, le=60, description="how often a webhook-callback tool is polled"
    )

    @model_validator(mode="before")
    @classmethod
    def _refuse_replaced(cls, data: Any) -> Any:
        if "PODIUM_ACTOR_CONCURRENCY" in os.environ:
            raise ValueError(
                "PODIUM_ACTOR_CONCURRENCY is no longer read: steps run many at a time per "
                "partition; bound them with PODIUM_ACTOR_MAX_IN_FLIGHT"
            )
        return data

    @model_validator(mode="after")
    def _one_sealing_key(self) -> ActorSettings:
        if self.sealing_key is not None and self.sealing_key_file is not None:
            raise ValueError("set PODIUM_ACTOR_SEALING_KEY or PODIUM_ACTOR_SEALING_KEY_FILE")
        return self

    @field_validator("allowed_secret_env", "python_tool_modules", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in re.split(r"[,\s]+", value) if part]
        return value

    @field_validator("allowed_secret_env")
    @classmethod
    def _check_patterns(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _ENV_PATTERN.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not a variable name or glob pattern (letters, digits, _, *, ?)"
                )
        return value

    @field_validator("python_tool_modules")
    @classmethod
    def _check_modules(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _MODULE.fullmatch(name):
                raise ValueError(f"{name!r} is not a module name (package.module)")
        return value


class DispatcherSettings(_TransactionalConsumerSettings):
    """`PODIUM_DISPATCHER_*`: how the dispatcher turns tasks into first steps."""

    model_config = SettingsConfigDict(env_prefix="PODIUM_DISPATCHER_", extra="forbid")

    default_task_timeout_s: float = Field(
        default=600.0, gt=0, description="deadline of a task that does not set one"
    )
    catalog_wait_s: float = Field(
        default=5.0, ge=0, description="how long to wait for a system not yet in the catalog"
    )
    max_in_flight: int = Field(
        default=256,
        ge=1,
        le=10_000,
        description="task requests held at once (running, or done and not yet committed)",
    )
    grace_s: float = Field(default=10.0, ge=0)
