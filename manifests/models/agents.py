"""`Agent`: a role with a prompt, a model, tools and limits."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
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
from manifests.models.memories import AgentMemory


class ModelSelector(_Model):
    """`model: {endpoint, model}`: which ModelEndpoint, and which model on it."""

    endpoint: Name
    model: str | None = Field(default=None, min_length=1)


class AgentLimits(_Model):
    max_steps: int = Field(default=DEFAULT_MAX_STEPS, ge=1, le=1000)
    timeout_s: Seconds = Field(default=DEFAULT_TIMEOUT_S, alias="timeout")

    _timeout = field_validator("timeout_s", mode="before")(parse_duration)


def _unique(values: list[str], *, fold: bool) -> list[str]:
    """Trimmed, blanks dropped, duplicates dropped (case-insensitive when `fold`), as Orloj."""
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        value = value.strip()
        key = value.lower() if fold else value
        if value and key not in seen:
            seen.add(key)
            out.append(value)
    return out


class AgentExecution(_Model):
    """Orloj's `execution`: how the loop treats tool calls and when the agent is done.
    `output_schema` is Podium's own (Orloj v0.3 has none)."""

    profile: Literal["dynamic", "contract"] = "dynamic"
    tool_sequence: list[str] = []
    """The tools a `contract` agent must call (as a set: any order) before it is done."""
    required_output_markers: list[str] = []
    duplicate_tool_call_policy: Literal["short_circuit", "deny"] = "short_circuit"
    on_contract_violation: Literal["observe", "non_retryable_error"] = "non_retryable_error"
    tool_use_behavior: Literal["run_llm_again", "stop_on_first_tool"] = "run_llm_again"
    output_schema: dict[str, Any] | None = None
    """A JSON Schema (an object) the final answer must match; sent as the vendor's structured
    output where it has one."""

    @field_validator(
        "profile",
        "duplicate_tool_call_policy",
        "on_contract_violation",
        "tool_use_behavior",
        mode="before",
    )
    @classmethod
    def _lowercase(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("required_output_markers", mode="before")
    @classmethod
    def _colon_markers(cls, value: object) -> object:
        """`- AUTH_PATH:` is YAML for {AUTH_PATH: null}; Orloj's parser reads the line as the
        marker "AUTH_PATH:", and so does this."""
        if not isinstance(value, list):
            return value
        return [
            f"{next(iter(item))}:"
            if isinstance(item, dict) and len(item) == 1 and next(iter(item.values())) is None
            else item
            for item in value
        ]

    @field_validator("tool_sequence")
    @classmethod
    def _tools(cls, value: list[str]) -> list[str]:
        return _unique(value, fold=True)

    @field_validator("required_output_markers")
    @classmethod
    def _markers(cls, value: list[str]) -> list[str]:
        return _unique(value, fold=False)

    @field_validator("output_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        if value.get("type") != "object":
            raise ValueError("must describe a JSON object (`type: object`), as vendors require")
        return value

    @model_validator(mode="after")
    def _contract(self) -> AgentExecution:
        if self.profile == "contract" and not self.tool_sequence:
            raise ValueError("`tool_sequence` is required when `profile` is contract")
        return self


class AgentSpec(_Model):
    description: str = ""
    prompt: str = ""
    model: ModelSelector | None = None
    model_ref: Name | None = None
    fallback_model_refs: list[Name] = []
    tools: list[str] = []
    roles: list[Name] = []
    memory: AgentMemory | None = None
    limits: AgentLimits = AgentLimits()
    execution: AgentExecution = AgentExecution()

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
    def granted_tools(self) -> list[str]:
        """`tools` and the memory tools `memory.allow` grants, each once."""
        memory = self.memory.tools if self.memory is not None else []
        return [*self.tools, *(t for t in memory if t not in self.tools)]

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
