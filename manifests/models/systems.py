"""`AgentSystem`: the agents of a system and the graph that routes between them."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from manifests.models._base import (
    Name,
    ResourceBase,
    _Model,
)


class GraphEdge(_Model):
    """`edges: [{to: b, when: approved}]`; an edge without `when` is the default."""

    to: Name
    when: str | None = Field(default=None, min_length=1)
    labels: dict[str, str] = {}


class JoinSpec(_Model):
    """`join: {mode: wait_for_all}` on a node marks it as the join of its incoming edges."""

    mode: Literal["wait_for_all"] = "wait_for_all"


class GraphNode(_Model):
    next: Name | None = None
    edges: list[GraphEdge] = []
    fan_out: list[Name] = []
    join: Name | JoinSpec | bool | None = None
    delegates_to: list[Name] = []
    exit_when: str | None = Field(default=None, min_length=1)
    max_iterations: int | None = Field(default=None, ge=1, le=10000)

    @property
    def join_target(self) -> str | None:
        """`join: e` on a fan-out node: the agent that joins the branches."""
        return self.join if isinstance(self.join, str) else None

    @property
    def is_join(self) -> bool:
        """`join: {mode: wait_for_all}` or `join: true`: this node joins its incoming edges."""
        return isinstance(self.join, JoinSpec) or self.join is True


class AgentSystemSpec(_Model):
    agents: list[Name] = Field(min_length=1)
    graph: dict[Name, GraphNode] = {}

    @field_validator("graph", mode="before")
    @classmethod
    def _empty_nodes(cls, value: object) -> object:
        """`graph: {writer: }` (a node without edges) is an empty node."""
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value


class AgentSystem(ResourceBase):
    kind_name: ClassVar[str] = "AgentSystem"
    kind: Literal["AgentSystem"]
    spec: AgentSystemSpec
