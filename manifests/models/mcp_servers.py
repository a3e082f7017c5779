"""`McpServer`: a Model Context Protocol server and the tools taken from it."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from manifests.models._base import (
    ResourceBase,
    Seconds,
    _Model,
    parse_duration,
)


class McpEnv(_Model):
    """An environment variable of the server: a `value`, or a `secretRef` (optionally mounted)."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: str | None = None
    secret_ref: str | None = Field(default=None, alias="secretRef")
    mount_path: str | None = Field(default=None, alias="mountPath")

    @model_validator(mode="after")
    def _one_source(self) -> McpEnv:
        if (self.value is None) == (self.secret_ref is None):
            raise ValueError(f"env {self.name}: set exactly one of `value` or `secretRef`")
        return self


class ToolFilter(_Model):
    include: list[str] = []
    exclude: list[str] = []


class McpServerSpec(_Model):
    transport: Literal["stdio", "http"]
    command: str | None = None
    args: list[str] = []
    image: str | None = None
    endpoint: str | None = None
    env: list[McpEnv] = []
    idle_timeout_s: Seconds | None = Field(default=None, alias="idle_timeout")
    tool_filter: ToolFilter = ToolFilter()

    _idle = field_validator("idle_timeout_s", mode="before")(parse_duration)

    @field_validator("tool_filter", mode="before")
    @classmethod
    def _filter_list(cls, value: object) -> object:
        """`tool_filter: [a, b]` is short for `tool_filter: {include: [a, b]}`."""
        if isinstance(value, list):
            return {"include": value}
        return value

    @model_validator(mode="after")
    def _by_transport(self) -> McpServerSpec:
        if self.transport == "stdio" and not (self.command or self.image):
            raise ValueError("a stdio McpServer needs `command` or `image`")
        if self.transport == "http" and not self.endpoint:
            raise ValueError("an http McpServer needs `endpoint`")
        return self


class McpServer(ResourceBase):
    kind_name: ClassVar[str] = "McpServer"
    kind: Literal["McpServer"]
    spec: McpServerSpec
