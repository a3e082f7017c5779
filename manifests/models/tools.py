"""`Tool`: an http, external, webhook-callback, grpc, wasm, python or MCP tool, its runtime
(timeout, retries) and Orloj's `auth` (a sealed Secret sent as a header, or exchanged for an OAuth2
token)."""

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

AUTH_TYPES = frozenset({"http", "external", "webhook-callback", "grpc"})
"""The tool types that send `auth` (as HTTP headers, or gRPC metadata)."""
_URL_TYPES = frozenset({"http", "external", "webhook-callback"})
_GRPC_TARGET = re.compile(r"^(dns:///)?[A-Za-z0-9._-]+:[0-9]{1,5}$|^\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}$")
"""Orloj's `host:port` of a grpc tool (a `dns:///` target too)."""
_WASM_MODULE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]*\.(wasm|wat)$")
"""A wasm tool's module, a path under the operator's module folder."""

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


def _lowered(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _operation_classes(value: object) -> object:
    # Orloj trims, lowercases and deduplicates them (and drops the empty ones).
    if not isinstance(value, list):
        return value
    out: list[object] = []
    for item in value:
        item = _lowered(item)
        if item != "" and item not in out:
            out.append(item)
    return out


def _capabilities(value: object) -> object:
    # Orloj trims them and deduplicates ignoring case.
    if not isinstance(value, list):
        return value
    out: list[object] = []
    seen: set[str] = set()
    for item in value:
        if isinstance(item, str):
            item = item.strip()
            if not item or item.lower() in seen:
                continue
            seen.add(item.lower())
        out.append(item)
    return out


class RetryPolicy(_Model):
    """Attempts and the waits between them: `backoff * 2**(n-1)`, at most `max_backoff`
    (default 8 x `backoff`), drawn by `jitter`: `full` (the default: uniform in [0, wait]),
    `equal` (in [wait/2, wait]) or `none` (the wait itself). `backoff: 0s` retries at once."""

    max_attempts: int = Field(default=3, ge=1, le=20)
    backoff: Annotated[float, Field(ge=0, le=7 * 86400)] = 0.5
    max_backoff: Annotated[float, Field(ge=0, le=7 * 86400)] | None = None
    jitter: Annotated[Literal["none", "full", "equal"], BeforeValidator(_lowered)] = "full"

    _backoff = field_validator("backoff", "max_backoff", mode="before")(parse_duration)

    @property
    def max_backoff_s(self) -> float:
        return self.backoff * 8 if self.max_backoff is None else self.max_backoff


IsolationMode = Literal["none", "sandboxed", "container", "wasm"]


class ToolRuntime(_Model):
    timeout_s: Seconds = Field(default=30.0, alias="timeout")
    isolation_mode: Annotated[IsolationMode, BeforeValidator(_lowered)] | None = None
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
    type: Annotated[
        Literal["http", "external", "webhook-callback", "grpc", "wasm", "python", "mcp"],
        BeforeValidator(_profile),
    ] = "http"
    endpoint: str | None = Field(default=None, min_length=1)
    description: str = ""
    input_schema: dict[str, Any] = {"type": "object"}
    runtime: ToolRuntime = ToolRuntime()
    capabilities: Annotated[
        list[Annotated[str, Field(min_length=1)]], BeforeValidator(_capabilities)
    ] = []
    operation_classes: Annotated[
        list[Literal["read", "write", "delete", "admin"]], BeforeValidator(_operation_classes)
    ] = []
    risk_level: Annotated[
        Literal["low", "medium", "high", "critical"], BeforeValidator(_lowered)
    ] = "low"
    allow_private_networks: bool = False
    mcp_server: Name | None = None
    auth: ToolAuth | None = None

    @property
    def operations(self) -> tuple[str, ...]:
        """`operation_classes`, or Orloj's default: `write` for high and critical risk, else
        `read` (what `ToolPermission.operation_rules` are matched against)."""
        if self.operation_classes:
            return tuple(self.operation_classes)
        return ("write",) if self.risk_level in ("high", "critical") else ("read",)

    @property
    def isolation(self) -> str:
        """The isolation the tool runs under: `sandboxed` for python tools (always, see
        `_isolation`), `none` for http tools, unless `runtime.isolation_mode` says otherwise."""
        if self.runtime.isolation_mode is not None:
            return self.runtime.isolation_mode
        return "sandboxed" if str(self.type) in ("python", "wasm") else "none"

    @model_validator(mode="after")
    def _isolation(self) -> ToolSpec:
        # What Podium can honour, refused otherwise rather than run under less isolation than
        # asked: python tools run in the sandbox child process (`none` too: Podium never runs
        # a tool's code in the actor), http tools call their server from the actor.
        mode = self.runtime.isolation_mode
        if mode == "container":
            raise ValueError(
                "runtime.isolation_mode container is not supported: Podium has no container "
                "runtime; python tools run sandboxed (isolation_mode sandboxed), http tools "
                "call their endpoint (isolation_mode none)"
            )
        kind = str(self.type)
        if mode == "wasm" and kind != "wasm":
            raise ValueError(
                f"runtime.isolation_mode wasm applies to tools of type wasm only (this one is "
                f"{kind})"
            )
        if mode == "sandboxed" and kind not in ("python", "wasm"):
            raise ValueError(
                f"runtime.isolation_mode sandboxed is not supported for tools of type "
                f"{self.type}: Podium sandboxes python tools only (an http tool runs on its "
                "server; use isolation_mode none)"
            )
        return self

    @model_validator(mode="after")
    def _by_type(self) -> ToolSpec:
        if self.auth is not None and (self.type not in AUTH_TYPES or self.endpoint is None):
            # Refused rather than ignored: only these types with an endpoint send it.
            raise ValueError(
                "`auth` applies to tools of type http, external, webhook-callback and grpc with "
                "an `endpoint` only"
                + (f" (this one is {self.type})" if self.type not in AUTH_TYPES else "")
            )
        endpoint = self.endpoint
        # An http tool without an endpoint is allowed here only to configure a built-in
        # (`read-url`, `web-search`); `Tool` checks the name, which the spec does not know.
        if self.type in _URL_TYPES:
            needs = self.type != "http"
            if (endpoint is None and needs) or (
                endpoint is not None and not re.match(r"^https?://", endpoint)
            ):
                raise ValueError(f"a tool of type {self.type} needs `endpoint: http(s)://...`")
        elif self.type == "grpc":
            if not endpoint or not _GRPC_TARGET.match(endpoint):
                raise ValueError("a tool of type grpc needs `endpoint: host:port`")
        elif self.type == "wasm":
            # Without an endpoint the operator's module runs (Orloj's --tool-wasm-module).
            if endpoint is not None and (
                not _WASM_MODULE.match(endpoint) or ".." in endpoint.split("/")
            ):
                raise ValueError(
                    "the `endpoint` of a wasm tool names its module: a relative path ending in "
                    ".wasm or .wat, without `..` (or no endpoint: the operator's module)"
                )
        elif self.type == "python":
            if not endpoint or not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", endpoint):
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
