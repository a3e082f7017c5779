"""Orloj v0.3's ModelEndpoint examples load verbatim (examples/resources/model-endpoints/), with
its provider spellings, and the new providers' own requirements are checked when validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from manifests.loader import load_paths

SECRETS = """\
apiVersion: orloj.dev/v1
kind: Secret
metadata: {name: anthropic-api-key}
spec: {stringData: {value: sk-ant}}
---
apiVersion: orloj.dev/v1
kind: Secret
metadata: {name: azure-openai-api-key}
spec: {stringData: {value: az}}
---
apiVersion: orloj.dev/v1
kind: Secret
metadata: {name: openai-api-key}
spec: {stringData: {value: sk}}
---
"""

ORLOJ_EXAMPLES = {
    "anthropic_default.yaml": """\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata:
  name: anthropic-default
spec:
  provider: anthropic
  base_url: https://api.anthropic.com/v1
  default_model: claude-3-5-sonnet-latest
  options:
    anthropic_version: "2023-06-01"
    max_tokens: "1024"
  auth:
    secretRef: anthropic-api-key
""",
    "azure_openai_default.yaml": """\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata:
  name: azure-openai-default
spec:
  provider: azure-openai
  base_url: https://YOUR_RESOURCE_NAME.openai.azure.com
  default_model: gpt-4o-deployment
  options:
    api_version: "2024-10-21"
  auth:
    secretRef: azure-openai-api-key
""",
    "ollama_default.yaml": """\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata:
  name: ollama-default
spec:
  provider: ollama
  base_url: http://127.0.0.1:11434
  default_model: llama3.1
""",
    "openai_default.yaml": """\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata:
  name: openai-default
spec:
  provider: openai
  base_url: https://api.openai.com/v1
  default_model: gpt-4o-mini
  auth:
    secretRef: openai-api-key
""",
}


def load(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "m.yaml"
    path.write_text(SECRETS + text)
    return [e.message for e in load_paths([path]).errors]


@pytest.mark.parametrize("name", sorted(ORLOJ_EXAMPLES))
def test_orloj_examples_load_verbatim(tmp_path: Path, name: str) -> None:
    assert load(tmp_path, ORLOJ_EXAMPLES[name]) == []


def endpoint(spec: str) -> str:
    return f"apiVersion: orloj.dev/v1\nkind: ModelEndpoint\nmetadata: {{name: e}}\nspec:\n{spec}"


@pytest.mark.parametrize(
    ("written", "provider"),
    [("Azure", "azure-openai"), ("azure_openai", "azure-openai"), (" OLLAMA", "ollama")],
)
def test_orlojs_other_spellings(tmp_path: Path, written: str, provider: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        endpoint(
            f"  provider: '{written}'\n  base_url: https://r.openai.azure.com\n  default_model: m\n"
        )
    )
    result = load_paths([path])
    assert result.errors == []
    assert result.catalog.endpoints["e"].spec.provider == provider


def test_provider_defaults_to_openai_as_in_orloj(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(endpoint("  default_model: gpt-4o-mini\n"))
    assert load_paths([path]).catalog.endpoints["e"].spec.provider == "openai"


def test_a_bedrock_endpoint(tmp_path: Path) -> None:
    text = (
        "apiVersion: orloj.dev/v1\nkind: Secret\nmetadata: {name: aws}\n"
        "spec: {stringData: {access_key_id: AK, secret_access_key: SK}}\n---\n"
        + endpoint(
            "  provider: bedrock\n  default_model: anthropic.claude-3-5-sonnet-20240620-v1:0\n"
            "  options: {region: us-east-1}\n  auth: {secretRef: aws}\n"
        )
    )
    assert load(tmp_path, text) == []


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("  provider: azure-openai\n  default_model: m\n", "azure-openai needs `base_url`"),
        (
            "  provider: bedrock\n  default_model: m\n  auth: {secretRef: openai-api-key}\n",
            "bedrock needs `options.region`",
        ),
        (
            "  provider: bedrock\n  default_model: m\n  options: {region: us-east-1}\n"
            "  api_key_env: AWS_SECRET\n",
            "bedrock signs with AWS credentials",
        ),
        (
            "  provider: bedrock\n  default_model: m\n  options: {region: us-east-1}\n"
            "  auth: {secretRef: 'openai-api-key:value'}\n",
            "without `:key`",
        ),
    ],
)
def test_refused(tmp_path: Path, spec: str, problem: str) -> None:
    [message] = load(tmp_path, endpoint(spec))
    assert problem in message
