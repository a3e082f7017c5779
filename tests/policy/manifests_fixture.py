"""Manifests the policy tests apply, as users write them (Orloj format), and helpers to build
requests."""

from __future__ import annotations

from typing import Any

from manifests.loader import build, parse_text
from policy_service.rules import RuleSet, rules_from_resources

SYSTEM_YAML = """
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {name: local}
spec:
  provider: mock
  default_model: mock-small
  pricing: {input_per_million: 1000.0, output_per_million: 2000.0}
---
apiVersion: orloj.dev/v1
kind: Tool
metadata: {name: send-email}
spec: {type: http, endpoint: "http://127.0.0.1:9/send"}
---
apiVersion: orloj.dev/v1
kind: Tool
metadata: {name: shell}
spec: {type: http, endpoint: "http://127.0.0.1:9/shell"}
---
apiVersion: orloj.dev/v1
kind: Tool
metadata: {name: wire-money}
spec: {type: http, endpoint: "http://127.0.0.1:9/wire"}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: researcher}
spec:
  prompt: research
  model: {endpoint: local, model: mock-small}
  tools: [web-search, shell, send-email, wire-money]
  limits: {max_steps: 4}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: writer}
spec:
  prompt: write
  model: {endpoint: local, model: mock-large}
  tools: [web-search, send-email]
  roles: [editor]
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {name: report}
spec:
  agents: [researcher, writer]
  graph:
    researcher: {next: writer}
---
apiVersion: orloj.dev/v1
kind: AgentPolicy
metadata: {name: cost-guard}
spec:
  scope: {system: report}
  max_tokens_per_task: 1000
  allowed_models: [mock-small]
  denied_tools: [shell]
---
apiVersion: orloj.dev/v1
kind: AgentPolicy
metadata: {name: usd-guard}
spec:
  target_systems: [report]
  target_agents: [researcher]
  max_cost_per_task_usd: 1.0
---
apiVersion: orloj.dev/v1
kind: AgentRole
metadata: {name: editor}
spec:
  permissions: {tools: [web-search], max_steps: 3}
---
apiVersion: orloj.dev/v1
kind: ToolPermission
metadata: {name: email-policy}
spec:
  tool: send-email
  denied_agents: [writer]
---
apiVersion: orloj.dev/v1
kind: ToolPermission
metadata: {name: money-needs-a-human}
spec:
  tool: wire-money
  approval_required: true
"""


def rule_set(text: str = SYSTEM_YAML) -> RuleSet:
    located, errors = parse_text("policy-test.yaml", text)
    result = build(located, errors)
    assert result.catalog is not None, [str(e) for e in result.errors]
    return rules_from_resources(result.catalog.resources())


def pricer(
    provider: str, model: str, input_tokens: int, output_tokens: int, pricing: Any
) -> float | None:
    """Prices from the endpoint's `pricing` override only (enough for these tests)."""
    if pricing is None:
        return None
    return float(
        (input_tokens * pricing.input_per_million + output_tokens * pricing.output_per_million)
        / 1_000_000
    )
