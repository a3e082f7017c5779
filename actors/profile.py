"""What the agent loop knows of an agent (`AgentProfile`), and how it is read from the catalog:
the prompt, the models in order (primary, then fallbacks) with their providers, the tools, the
workers it may delegate to and the outcomes it may return."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from actors.providers import make_provider
from actors.providers.base import ModelProvider
from manifests.catalog import Catalog
from manifests.models import DEFAULT_MAX_STEPS, AgentExecution, ModelEndpoint, Secret
from topics.routing import RouteNode

ProviderFactory = Callable[[ModelEndpoint, Secret | None], ModelProvider]
"""An endpoint and the catalog's Secret its `auth.secretRef` names (None: none, or not applied)
-> its provider (`make_provider`, with the actor's settings and sealing key)."""


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """One endpoint and model to try, in order (primary first, then fallbacks)."""

    endpoint: str
    provider_name: str
    model: str
    provider: ModelProvider
    pricing: Any = None
    """The endpoint's own prices (`ModelEndpoint.spec.pricing`), when it sets them."""


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """Everything the loop needs to know about an agent, read from the catalog."""

    name: str
    system_prompt: str
    models: Sequence[ModelChoice]
    tools: Sequence[str] = ()
    delegates: Sequence[str] = ()
    outcomes: Sequence[str] = ()
    max_steps: int = DEFAULT_MAX_STEPS
    timeout_s: float = 60.0
    max_output_tokens: int = 1024
    model_attempts: int = 3
    model_backoff_s: float = 0.5
    execution: AgentExecution = field(default_factory=AgentExecution)
    """The agent's `execution` rules (`actors.execution`)."""


def system_prompt(agent: str, prompt: str, description: str) -> str:
    if prompt.strip():
        return prompt
    what = description.strip() or "Do your part of the task."
    return (
        f"You are {agent}, one agent of a multi-agent system. {what} Answer with your result only."
    )


class Profiles:
    """Builds an agent's profile from the catalog; one provider per endpoint definition and
    Secret, kept until `aclose` (a changed endpoint, or its Secret applied again, gets a new
    provider: that is how a rotated key takes effect)."""

    def __init__(
        self,
        *,
        max_output_tokens: int,
        provider_factory: ProviderFactory = make_provider,
    ) -> None:
        self._max_output_tokens = max_output_tokens
        self._provider_factory = provider_factory
        self._providers: dict[tuple[str, str, str], ModelProvider] = {}

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        self._providers.clear()

    def _provider(self, endpoint: ModelEndpoint, secret: Secret | None) -> ModelProvider:
        key = (
            endpoint.metadata.name,
            msgspec.json.encode(endpoint.model_dump(mode="json")).hex(),
            msgspec.json.encode(secret.model_dump(mode="json")).hex() if secret else "",
        )
        provider = self._providers.get(key)
        if provider is None:
            provider = self._provider_factory(endpoint, secret)
            self._providers[key] = provider
        return provider

    def of(self, catalog: Catalog, name: str, node: RouteNode | None) -> AgentProfile:
        """The profile of agent `name`, at its routing node `node` (None outside a system)."""
        agent = catalog.agent(name)
        choices = [catalog.model_for(name), *catalog.fallbacks_for(name)]
        models = [
            ModelChoice(
                endpoint=endpoint.metadata.name,
                provider_name=endpoint.spec.provider,
                model=model,
                provider=self._provider(endpoint, catalog.secret_for(endpoint)),
                pricing=endpoint.spec.pricing,
            )
            for endpoint, model in choices
        ]
        delegates = [e.to for e in node.edges if e.kind == "delegate"] if node else []
        return AgentProfile(
            name=name,
            system_prompt=system_prompt(name, agent.spec.prompt, agent.spec.description),
            models=models,
            tools=agent.spec.granted_tools,
            delegates=delegates,
            outcomes=list(node.outcomes) if node else [],
            max_steps=agent.spec.limits.max_steps,
            timeout_s=float(agent.spec.limits.timeout_s),
            max_output_tokens=self._max_output_tokens,
            execution=agent.spec.execution,
        )
