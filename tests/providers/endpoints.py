"""ModelEndpoint manifests for the provider tests, built by the real pydantic model."""

from __future__ import annotations

from typing import Any

from manifests.models import ModelEndpoint


def endpoint(name: str = "ep", **spec: Any) -> ModelEndpoint:
    return ModelEndpoint.model_validate(
        {
            "apiVersion": "orloj.dev/v1",
            "kind": "ModelEndpoint",
            "metadata": {"name": name},
            "spec": spec,
        }
    )
