"""`ModelEndpoint`: a model provider, its pricing, and the scripted replies of `mock`."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationError, model_validator

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


class ModelEndpointSpec(_Model):
    provider: Literal["openai", "anthropic", "openai-compatible", "mock"]
    base_url: str | None = Field(default=None, min_length=1)
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    default_model: str | None = Field(default=None, min_length=1)
    options: dict[str, Any] = {}
    pricing: Pricing | None = None
    auth: EndpointAuth | None = None

    @model_validator(mode="after")
    def _by_provider(self) -> ModelEndpointSpec:
        if self.api_key_env and self.auth is not None:
            raise ValueError(
                "set `api_key_env` or `auth.secretRef`, not both: the key comes from one place"
            )
        if self.provider == "openai-compatible" and not self.base_url:
            raise ValueError("provider openai-compatible needs `base_url`")
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
