"""`Agent`: a role with a prompt, a model, tools and limits."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from manifests.models._base import (
    DEFAULT_MAX_STEPS,
    DEFAULT_TIMEOUT_S,
    NAME_PATTERN,
    Name,
    ResourceBase,
    Seconds,
    _Model,
    parse_duration,
)


class ModelSelector(_Model):
    """`model: {endpoint, model}`: which ModelEndpoint, and which model on it."""

    endpoint: Name
    model: str | None = Field(default=None, min_length=1)


class AgentLimits(_Model):
    max_steps: int = Field(default=DEFAULT_MAX_STEPS, ge=1, le=1000)
    timeout_s: Seconds = Field(default=DEFAULT_TIMEOUT_S, alias="timeout")

    _timeout = field_validator("timeout_s", mode="before")(parse_duration)


class AgentSpec(_Model):
    description: str = ""
    prompt: str = ""
    model: ModelSelector | None = None
    model_ref: Name | None = None
    fallback_model_refs: list[Name] = []
    tools: list[str] = []
    roles: list[Name] = []
    limits: AgentLimits = AgentLimits()

    @field_validator("tools", mode="before")
    @classmethod
    def _no_tools(cls, value: object) -> object:
        """`tools: [none]` (and `tools: none`, `tools: null`) mean no tools."""
        if value is None or value == "none":
            return []
        if isinstance(value, list) and value == ["none"]:
            return []
        return value

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if name == "none":
                raise ValueError("'none' means no tools and cannot be listed with other tools")
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"tool name {name!r} is not a valid name")
        return value

    @model_validator(mode="after")
    def _one_model(self) -> AgentSpec:
        if self.model is None and self.model_ref is None:
            raise ValueError(
                "the agent has no model: add `model: {endpoint: <ModelEndpoint>, model: <name>}` "
                "or `model_ref: <ModelEndpoint>`"
            )
        if self.model is not None and self.model_ref is not None:
            raise ValueError("set either `model` or `model_ref`, not both")
        return self

    @property
    def endpoint_name(self) -> str:
        """The ModelEndpoint this agent calls (from `model.endpoint` or `model_ref`)."""
        if self.model is not None:
            return self.model.endpoint
        assert self.model_ref is not None
        return self.model_ref


class Agent(ResourceBase):
    kind_name: ClassVar[str] = "Agent"
    kind: Literal["Agent"]
    spec: AgentSpec
