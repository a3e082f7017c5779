"""The resource kinds of a manifest, as pydantic models (Orloj `orloj.dev/v1`, plus extensions).

Both spellings the seeds use are read (`model` and `model_ref`, `next` and `edges`,
`max_tokens_per_task` and `max_tokens_per_run`, `denied_tools` and `blocked_tools`, `scope.system`
and `target_systems`); the models expose one normalised view so that consumers never deal with
spellings. Unknown fields are errors (`extra="forbid"`).
"""

from manifests.models._base import (
    API_VERSIONS,
    DEFAULT_MAX_STEPS,
    DEFAULT_TIMEOUT_S,
    NAME_PATTERN,
    Metadata,
    Name,
    ResourceBase,
    Seconds,
    parse_duration,
)
from manifests.models.agents import (
    Agent,
    AgentExecution,
    AgentLimits,
    AgentSpec,
    ModelSelector,
)
from manifests.models.endpoints import (
    BEDROCK_KEYS,
    EndpointAuth,
    MockOptions,
    MockReply,
    MockToolCall,
    ModelEndpoint,
    ModelEndpointSpec,
    Pricing,
)
from manifests.models.governance import (
    AgentPolicy,
    AgentPolicySpec,
    AgentRole,
    AgentRoleSpec,
    AuditSettings,
    OperationRule,
    PolicyRules,
    PolicyScope,
    RolePermissions,
    ToolPermission,
    ToolPermissionSpec,
    normalize_permission,
)
from manifests.models.mcp_servers import (
    McpEnv,
    McpServer,
    McpServerSpec,
    ToolFilter,
)
from manifests.models.memories import (
    MEMORY_TOOLS,
    AgentMemory,
    Memory,
    MemoryAuth,
    MemorySpec,
)
from manifests.models.secrets import (
    DEFAULT_SECRET_KEY,
    Secret,
    SecretRef,
    SecretSpec,
    parse_secret_ref,
)
from manifests.models.systems import (
    AgentSystem,
    AgentSystemSpec,
    GraphEdge,
    GraphNode,
    JoinSpec,
)
from manifests.models.tasks import (
    MessageRetry,
    Task,
    TaskRequirements,
    TaskRetry,
    TaskSchedule,
    TaskScheduleSpec,
    TaskSpec,
)
from manifests.models.tools import (
    RetryPolicy,
    Tool,
    ToolAuth,
    ToolRuntime,
    ToolSpec,
)
from manifests.models.webhooks import (
    TaskWebhook,
    TaskWebhookSpec,
    WebhookAuth,
    WebhookIdempotency,
    WebhookPayload,
)
from manifests.models.workers import Worker, WorkerCapabilities, WorkerSpec

Resource = (
    Agent
    | AgentSystem
    | AgentPolicy
    | AgentRole
    | ToolPermission
    | ModelEndpoint
    | Tool
    | McpServer
    | Memory
    | Task
    | TaskSchedule
    | Secret
    | TaskWebhook
    | Worker
)

KINDS: dict[str, type[ResourceBase]] = {
    cls.kind_name: cls
    for cls in (
        Agent,
        AgentSystem,
        AgentPolicy,
        AgentRole,
        ToolPermission,
        ModelEndpoint,
        Tool,
        McpServer,
        Memory,
        Task,
        TaskSchedule,
        Secret,
        TaskWebhook,
        Worker,
    )
}
"""Kind name -> model class."""

__all__ = [
    "API_VERSIONS",
    "BEDROCK_KEYS",
    "DEFAULT_MAX_STEPS",
    "DEFAULT_SECRET_KEY",
    "DEFAULT_TIMEOUT_S",
    "KINDS",
    "MEMORY_TOOLS",
    "NAME_PATTERN",
    "Agent",
    "AgentExecution",
    "AgentLimits",
    "AgentMemory",
    "AgentPolicy",
    "AgentPolicySpec",
    "AgentRole",
    "AgentRoleSpec",
    "AgentSpec",
    "AgentSystem",
    "AgentSystemSpec",
    "AuditSettings",
    "EndpointAuth",
    "GraphEdge",
    "GraphNode",
    "JoinSpec",
    "McpEnv",
    "McpServer",
    "McpServerSpec",
    "Memory",
    "MemoryAuth",
    "MemorySpec",
    "MessageRetry",
    "Metadata",
    "MockOptions",
    "MockReply",
    "MockToolCall",
    "ModelEndpoint",
    "ModelEndpointSpec",
    "ModelSelector",
    "Name",
    "OperationRule",
    "PolicyRules",
    "PolicyScope",
    "Pricing",
    "Resource",
    "ResourceBase",
    "RetryPolicy",
    "RolePermissions",
    "Seconds",
    "Secret",
    "SecretRef",
    "SecretSpec",
    "Task",
    "TaskRequirements",
    "TaskRetry",
    "TaskSchedule",
    "TaskScheduleSpec",
    "TaskSpec",
    "TaskWebhook",
    "TaskWebhookSpec",
    "Tool",
    "ToolAuth",
    "ToolFilter",
    "ToolPermission",
    "ToolPermissionSpec",
    "ToolRuntime",
    "ToolSpec",
    "WebhookAuth",
    "WebhookIdempotency",
    "WebhookPayload",
    "Worker",
    "WorkerCapabilities",
    "WorkerSpec",
    "normalize_permission",
    "parse_duration",
    "parse_secret_ref",
]
