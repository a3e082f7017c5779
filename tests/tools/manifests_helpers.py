from __future__ import annotations

from typing import Any

from manifests.models import Tool


def tool(name: str, **spec: Any) -> Tool:
    return Tool.model_validate(
        {"apiVersion": "orloj.dev/v1", "kind": "Tool", "metadata": {"name": name}, "spec": spec}
    )
