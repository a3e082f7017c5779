"""`Tool`: an http, python or MCP tool, its runtime (timeout, retries) and, for http, Orloj's
`auth` (a sealed Secret sent as a header, or exchanged for an OAuth2 token)."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from manifests.builtins import BUILTIN_TOOLS
from manifests.models._base import (
    Name,
    ResourceBase,
    Seconds,
    _Model,
    parse_duration,
)
from manifests.models.secrets import SecretRef, parse_secret_ref

OAUTH2_KEYS = ("client_id", "client_secret")
"""The keys of the Secret an `oauth2_client_credentials` tool reads (Orloj's)."""

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
"""An HTTP header name (RFC 9110 token)."""


def _profile(value: object) -> object:
    # Orloj trims and lowercases the profile before checking it.
    return value.strip().lower() if isinstance(value, str) else value


def _scopes(value: object) -> object:
    # Orloj trims the scopes and drops the empty ones.
    if isinstance(value, list):
        return [s.strip() for s in value if not isinstance(s, str) or s.strip()]
    return value


class RetryPolicy(_Model):
    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff: Seconds = 0.5

    _backoff = field_validator("backoff", mode="before")(parse_duration)


class ToolRuntime(_Model):
    timeout_s: Seconds = Field(default=30.0, alias="timeout")
    retry: RetryPolicy = RetryPolicy()

    _timeout = field_validator("timeout_s", mode="before")(parse_duration)


class ToolAuth(_Model):
    """Orloj's `auth` of an http tool: what the actor sends, from the sealed Secret `secretRef`.

    `bearer` (the default): `Authorization: Bearer <value>`; `api_key_header`:
    `<headerName>: <value>`; `basic`: `Authorization: Basic base64(<value>)`, the value being
    `user:password`; `oauth2_client_credentials`: the Secret's `client_id` and `client_secret`
    are exchanged at `tokenURL` for a bearer token (cached until its `expires_in`)."""

    profile: Annotated[
        Literal["bearer", "api_key_header", "basic", "oauth2_client_credentials"],
        BeforeValidator(_profile),
    ] = "bearer"
    secret_ref: SecretRef = Field(alias="secretRef")
    header_name: str | None = Field(default=None, alias="headerName")
    token_url: str | None = Field(default=None, alias="tokenURL")
    scopes: Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_scopes)] = []

    @model_validator(mode="after")
    def _by_profile(self) -> ToolAuth:
        if self.profile == "api_key_header":
            if not self.header_name:
                raise ValueError("`headerName` is required when auth.profile is api_key_header")
            if not _HEADER_NAME.match(self.header_name):
                raise ValueError(f"headerName {self.header_name[:60]!r} is not an HTTP header name")
        elif self.header_name is not None:
            raise ValueError(
                f"`headerName` applies to auth.profile api_key_header only (not {self.profile})"
            )
        if self.profile == "oauth2_client_credentials":
            if not self.token_url or not re.match(r"^https?://\S+$", self.token_url):
                raise ValueError(
                    "`tokenURL: http(s)://...` is required when auth.profile is "
                    "oauth2_client_credentials"
                )
            if ":" in self.secret_ref:
                raise ValueError(
                    "oauth2_client_credentials reads the keys client_id and client_secret of "
                    "the Secret: write `secretRef: <name>`, without `:key`"
                )
        elif self.token_url is not None or self.scopes:
            raise ValueError(
                "`tokenURL` and `scopes` apply to auth.profile oauth2_client_credentials only "
                f"(not {self.profile})"
            )
        return self

    @property
    def secret_name(self) -> str:
        return parse_secret_ref(self.secret_ref)[1]

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """The keys of the Secret this profile reads."""
        if self.profile == "oauth2_client_credentials":
            return OAUTH2_KEYS
        return (parse_secret_ref(self.secret_ref)[2],)


class ToolSpec(_Model):
    type: Literal["http", "python", "mcp"] = "http"
    endpoint: str | None = Field(default=None, min_length=1)
    description: str = ""
    input_schema: dict[str, Any] = {"type": "object"}
    runtime: ToolRuntime = ToolRuntime()
    risk_level: Literal["low", "medium", "high", "critical"] = "low"
    allow_private_networks: bool = False
    mcp_server: Name | None = None
    auth: ToolAuth | None = None

    @model_validator(mode="after")
    def _by_type(self) -> ToolSpec:
        if self.auth is not None and (self.type != "http" or self.endpoint is None):
            # Refused rather than ignored: only an http tool with an endpoint sends it.
            raise ValueError(
                "`auth` applies to tools of type http with an `endpoint` only"
                + (f" (this one is {self.type})" if self.type != "http" else "")
            )
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
