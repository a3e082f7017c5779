"""Manifests: the resource kinds (Orloj `orloj.dev/v1` plus extensions), the loader with
file:line errors, validation, the `Catalog` snapshot, apply and the watcher of the manifests topic.
"""

from manifests.builtins import BUILTIN_TOOLS, DELEGATE_TOOL
from manifests.catalog import Catalog
from manifests.errors import ManifestError
from manifests.loader import InvalidManifests, LoadResult, catalog_from_resources, load_paths
from manifests.models import (
    KINDS,
    Agent,
    AgentPolicy,
    AgentRole,
    AgentSystem,
    McpServer,
    ModelEndpoint,
    Resource,
    Task,
    TaskSchedule,
    Tool,
    ToolPermission,
)

__all__ = [
    "BUILTIN_TOOLS",
    "DELEGATE_TOOL",
    "KINDS",
    "Agent",
    "AgentPolicy",
    "AgentRole",
    "AgentSystem",
    "Catalog",
    "InvalidManifests",
    "LoadResult",
    "ManifestError",
    "McpServer",
    "ModelEndpoint",
    "Resource",
    "Task",
    "TaskSchedule",
    "Tool",
    "ToolPermission",
    "catalog_from_resources",
    "load_paths",
]
