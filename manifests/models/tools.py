"""`Tool`: an http, python or MCP tool and its runtime (timeout, retries)."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from manifests.builtins import BUILTIN_TOOLS
from manifests.models._base import (
    Name,
    ResourceBase,
    Seconds,
    _Model,
    parse_duration,
)


class RetryPolicy(_Model):
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff: Seconds = 0.5

    _backoff = field_validator("backoff", mode="before")(parse_duration)


class ToolRuntime(_Model):
    timeout_s: Seconds = Field(default=30.0, alias="timeout")
    retry: RetryPolicy = RetryPolicy()

    _timeout = field_validator("timeout_s", mode="before")(parse_duration)


class ToolSpec(_Model):
    type: Literal["http", "python", "mcp"] = "http"
    endpoint: str | None = Field(default=None, min_length=1)
    description: str = ""
    input_schema: dict[str, Any] = {"type": "object"}
    runtime: ToolRuntime = ToolRuntime()
    risk_level: Literal["low", "medium", "high", "critical"] = "low"
    allow_private_networks: bool = False
    mcp_server: Name | None = None

    @model_validator(mode="after")
    def _by_type(self) -> ToolSpec:
        # An http tool without an endpoint is allowed here only to configure a built-in
        # (`read-url`, `web-search`); `Tool` checks the name, which the spec does not know.
        if self.type == "http":
            if self.endpoint is not None and not re.match(r"^https?://", self.endpoint):
                raise ValueError("a tool of type http needs `endpoint: http(s)://...`")
        elif self.type == "python":
            if not self.endpoint or not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", self.endpoint):
                raise ValueError("a tool of type python needs `endpoint: module:function`")
        elif self.mcp_server is None:
            raise ValueError("a tool of type mcp needs `mcp_server: <McpServer>`")
        return self


class Tool(ResourceBase):
    """A tool. One named like a built-in without an `endpoint` configures the built-in (for
    example `allow_private_networks` for `read-url`); with an `endpoint` it replaces it."""

    kind_name: ClassVar[str] = "Tool"
    kind: Literal["Tool"]
    spec: ToolSpec

    @model_validator(mode="after")
    def _endpoint_unless_builtin(self) -> Tool:
        if (
            self.spec.type == "http"
            and self.spec.endpoint is None
            and self.metadata.name not in BUILTIN_TOOLS
        ):
            raise ValueError(
                "a tool of type http needs `endpoint: http(s)://...` "
                f"(only the built-ins {', '.join(sorted(BUILTIN_TOOLS))} may omit it)"
            )
        return self
