"""The `azure-openai` provider: Chat Completions on an Azure OpenAI resource through the
`openai` SDK's `AsyncAzureOpenAI` (`api-key` header, `api-version` query, the deployment in the
path). Options as Orloj names them: `api_version` (default 2024-10-21, Orloj's) and
`deployment` (the deployment the calls go to; without it, the model name is the deployment)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import openai

from actors.providers.keys import ApiKey, EnvKey
from actors.providers.openai_chat import SUPPORTED_OPTIONS, OpenAIChatProvider

DEFAULT_API_VERSION = "2024-10-21"
AZURE_OPTIONS = frozenset({"api_version", "deployment"})


class AzureOpenAIProvider(OpenAIChatProvider):
    """Implements `ModelProvider` for Azure OpenAI deployments."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: ApiKey | None = None,
        default_model: str | None = None,
        options: Mapping[str, Any] | None = None,
        where: str = "ModelEndpoint",
    ) -> None:
        rest = dict(options or {})
        self._api_version = str(rest.pop("api_version", "") or DEFAULT_API_VERSION).strip()
        deployment = str(rest.pop("deployment", "") or "").strip()
        self._deployment = deployment or None
        super().__init__(
            name="azure-openai",
            base_url=base_url,
            api_key=api_key or EnvKey("azure-openai", "AZURE_OPENAI_API_KEY"),
            default_model=default_model,
            options=rest,
            where=where,
            supported=SUPPORTED_OPTIONS | AZURE_OPTIONS,
        )

    def _make_client(self, key: str) -> openai.AsyncOpenAI:
        return openai.AsyncAzureOpenAI(
            api_key=key,
            azure_endpoint=self._base_url or "",
            azure_deployment=self._deployment,
            api_version=self._api_version,
            max_retries=0,
        )
