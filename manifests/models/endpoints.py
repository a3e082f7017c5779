"""`ModelEndpoint`: a model provider, its pricing, and the scripted replies of `mock`."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from manifests.models._base import (
    ResourceBase,
    _Model,
)
from manifests.models.secrets import SecretRef, parse_secret_ref


class Pricing(_Model):
    """USD per million tokens; overrides the pricing package (self-hosted or demo models)."""

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)
    cached_input_per_million: float | None = Field(default=None, ge=0)


def _nested_problems(prefix: str, exc: ValidationError) -> str:
    """A nested model's errors as one message whose paths start at `prefix`."""
    problems = []
    for error in exc.errors():
        path = ".".join([prefix, *(str(part) for part in error["loc"])])
        if error["type"] == "extra_forbidden":
            problems.append(f"{path}: unknown field")
        else:
            problems.append(f"{path}: {error['msg']}")
    return "; ".join(problems)


class MockToolCall(_Model):
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = {}


class MockReply(_Model):
    """One scripted reply of the `mock` provider; a plain string is short for `{content: ...}`."""

    content: str = ""
    tool_calls: list[MockToolCall] = []
    outcome: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _text_shorthand(cls, value: object) -> object:
        return {"content": value} if isinstance(value, str) else value


class MockOptions(_Model):
    """`options` of a `mock` endpoint: per agent, replies in order; after the last, the last
    repeats (reply n answers the agent's n-th model call of the task)."""

    script: dict[str, Annotated[list[MockReply], Field(min_length=1)]] = {}


class EndpointAuth(_Model):
    """Orloj's `auth`: the Secret whose value is the API key (sent as the bearer token)."""

    secret_ref: SecretRef = Field(alias="secretRef")

    @property
    def secret_name(self) -> str:
        return parse_secret_ref(self.secret_ref)[1]

    @property
    def secret_key(self) -> str:
        return parse_secret_ref(self.secret_ref)[2]


PROVIDER_ALIASES = {
    "azure_openai": "azure-openai",
    "azure": "azure-openai",
    "openai_compatible": "openai-compatible",
}
"""Orloj's other spellings of a provider (its registry's aliases), read as the canonical name."""

BEDROCK_KEYS = ("access_key_id", "secret_access_key")
"""The keys of the Secret a `bedrock` endpoint names (and `session_token`, optionally)."""


class ModelEndpointSpec(_Model):
    provider: Literal[
        "openai", "anthropic", "azure-openai", "ollama", "openai-compatible", "bedrock", "mock"
    ] = "openai"
    base_url: str | None = Field(default=None, min_length=1)
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    default_model: str | None = Field(default=None, min_length=1)
    options: dict[str, Any] = {}
    pricing: Pricing | None = None
    auth: EndpointAuth | None = None

    @field_validator("provider", mode="before")
    @classmethod
    def _canonical_provider(cls, value: object) -> object:
        """As in Orloj: trimmed, lowercase, and an alias read as its provider."""
        if isinstance(value, str):
            name = value.strip().lower()
            return PROVIDER_ALIASES.get(name, name)
        return value

    @model_validator(mode="after")
    def _by_provider(self) -> ModelEndpointSpec:
        if self.api_key_env and self.auth is not None:
            raise ValueError(
                "set `api_key_env` or `auth.secretRef`, not both: the key comes from one place"
            )
        if self.provider == "openai-compatible" and not self.base_url:
            raise ValueError("provider openai-compatible needs `base_url`")
        if self.provider == "azure-openai" and not self.base_url:
            raise ValueError(
                "provider azure-openai needs `base_url` (https://<resource>.openai.azure.com)"
            )
        if self.provider == "bedrock":
            if not str(self.options.get("region", "")).strip():
                raise ValueError("provider bedrock needs `options.region` (e.g. us-east-1)")
            if self.auth is None:
                raise ValueError(
                    "provider bedrock signs with AWS credentials: name a Secret with "
                    f"{' and '.join(BEDROCK_KEYS)} in `auth.secretRef` (not `api_key_env`)"
                )
            if ":" in self.auth.secret_ref.split("/")[-1]:
                raise ValueError(
                    "provider bedrock reads the Secret's keys "
                    f"{', '.join(BEDROCK_KEYS)} (and session_token): `auth.secretRef` names "
                    "the Secret without `:key`"
                )
        if self.provider == "mock":
            try:
                self.mock_options()
            except ValidationError as exc:
                raise ValueError(_nested_problems("options", exc)) from None
        return self

    def mock_options(self) -> MockOptions:
        """The options of a `mock` endpoint, checked (pydantic names the bad path)."""
        return MockOptions.model_validate(self.options)


class ModelEndpoint(ResourceBase):
    kind_name: ClassVar[str] = "ModelEndpoint"
    kind: Literal["ModelEndpoint"]
    spec: ModelEndpointSpec
