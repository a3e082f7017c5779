"""Routing tables: a system's graph compiled into what each actor follows.

`manifests.compile` turns an `AgentSystem` into one `RoutingTable`; actors read the tables
(published on `podium.manifests` as `RoutingTable/<system>`) and never look at the graph YAML.
"""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

LOOP_CONTINUE = "continue"
"""The outcome a loop node returns to go round again (any outcome but `exit_when` does)."""

EdgeKind = Literal["next", "fan_out", "delegate", "loop", "conditional"]


class RouteEdge(Struct, frozen=True, kw_only=True):
    """An out-edge of a node. `when` is the outcome that selects it (conditional and loop edges)."""

    to: str
    kind: EdgeKind
    when: str | None = None


class JoinRule(Struct, frozen=True, kw_only=True):
    """The node runs once, when every input has arrived, with all their outputs."""

    inputs: list[str]
    implicit: bool = False
    """No `join:` asked for it (the node has several inputs): it waits only for the branches of
    a fan-out that meet at it; a step that reaches it on a single path runs at once."""


class RouteNode(Struct, frozen=True, kw_only=True):
    agent: str
    topic: str
    group: str
    edges: list[RouteEdge] = []
    join: JoinRule | None = None
    max_iterations: int | None = None
    exit_when: str | None = None
    outcomes: list[str] = []
    """Outcome labels the agent must choose from (from `when` and `exit_when`); empty: none."""


class RoutingTable(Struct, frozen=True, kw_only=True):
    system: str
    entry: list[str]
    nodes: dict[str, RouteNode]
