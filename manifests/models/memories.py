"""`Memory` (Orloj's kind): a store agents read and write with the built-in memory tools, and
`memory:` on an Agent, which attaches one and grants its operations.

Providers: `in-memory` (the default; one store per actor process, lost on restart), `postgres`
(entries in PostgreSQL, keyword search by full-text search; vector search when `embedding_model`
is set, which needs the pgvector extension), `pgvector` (Orloj's name: `postgres` with
`embedding_model` required) and `http` (Orloj's adapter contract at `endpoint`). A postgres
store without `endpoint` uses the actors' `PODIUM_ACTOR_MEMORY_DATABASE_URL`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from manifests.models._base import Name, ResourceBase, _Model
from manifests.models.secrets import SecretRef, parse_secret_ref

MEMORY_OPERATIONS: tuple[str, ...] = ("read", "write", "search", "list", "ingest")
"""Orloj's operations, in its order; operation `op` is the tool `memory.<op>`."""

MEMORY_TOOLS: frozenset[str] = frozenset(f"memory.{op}" for op in MEMORY_OPERATIONS)


class MemoryAuth(_Model):
    """`auth.secretRef`: the http adapter's bearer token, or the PostgreSQL password."""

    secret_ref: SecretRef = Field(alias="secretRef")

    @property
    def secret_name(self) -> str:
        return parse_secret_ref(self.secret_ref)[1]

    @property
    def secret_key(self) -> str:
        return parse_secret_ref(self.secret_ref)[2]


class MemorySpec(_Model):
    type: str = ""
    """Orloj: informational (`vector`, `kv`); it changes nothing."""
    provider: Literal["in-memory", "postgres", "pgvector", "http"] = "in-memory"
    embedding_model: str | None = Field(default=None, min_length=1)
    """A ModelEndpoint (`namespace/name` is read as `name`) serving `/embeddings`."""
    endpoint: str | None = Field(default=None, min_length=1)
    auth: MemoryAuth | None = None

    @field_validator("provider", mode="before")
    @classmethod
    def _default_provider(cls, value: object) -> object:
        return "in-memory" if value in (None, "") else value

    @model_validator(mode="after")
    def _by_provider(self) -> MemorySpec:
        if self.provider == "in-memory":
            for field in ("endpoint", "auth", "embedding_model"):
                if getattr(self, field) is not None:
                    raise ValueError(f"`{field}` has no use with provider in-memory")
        elif self.provider == "http":
            if self.endpoint is None or not self.endpoint.startswith(("http://", "https://")):
                raise ValueError("provider http needs `endpoint`, an http(s) URL")
            if self.embedding_model is not None:
                raise ValueError("`embedding_model` has no use with provider http")
        else:
            if self.provider == "pgvector" and self.embedding_model is None:
                raise ValueError(
                    "provider pgvector needs `embedding_model` (a ModelEndpoint); for keyword "
                    "search without embeddings use provider postgres"
                )
            if self.endpoint is not None and not self.endpoint.startswith(
                ("postgres://", "postgresql://")
            ):
                raise ValueError(
                    f"provider {self.provider}: `endpoint` is a PostgreSQL DSN "
                    "(postgresql://user@host:5432/db)"
                )
        return self

    @property
    def embedding_endpoint(self) -> str | None:
        """The ModelEndpoint `embedding_model` names (without its namespace)."""
        if self.embedding_model is None:
            return None
        return self.embedding_model.rsplit("/", 1)[-1]


class Memory(ResourceBase):
    kind_name: ClassVar[str] = "Memory"
    kind: Literal["Memory"]
    spec: MemorySpec


class AgentMemory(_Model):
    """`memory: {ref, allow}` on an Agent: which Memory, and which operations its model gets
    (as the tools `memory.<op>`; none without `allow`, as in Orloj)."""

    ref: Name
    allow: list[str] = []

    @field_validator("ref", mode="before")
    @classmethod
    def _namespace(cls, value: object) -> object:
        return value.rsplit("/", 1)[-1] if isinstance(value, str) else value

    @field_validator("allow")
    @classmethod
    def _operations(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for raw in value:
            op = raw.strip().lower().removeprefix("memory.")
            if op not in MEMORY_OPERATIONS:
                raise ValueError(
                    f"{raw!r} is not a memory operation: use {', '.join(MEMORY_OPERATIONS)}"
                )
            if op not in out:
                out.append(op)
        return out

    @property
    def tools(self) -> list[str]:
        return [f"memory.{op}" for op in self.allow]
