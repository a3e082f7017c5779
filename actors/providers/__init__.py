"""Model providers behind one Protocol: openai, anthropic, openai-compatible, mock."""

from actors.providers.anthropic_messages import AnthropicProvider
from actors.providers.base import (
    ChatMessage,
    ModelProvider,
    ModelReply,
    ModelRequest,
    ToolCall,
    ToolSpec,
    Usage,
)
from actors.providers.endpoint import Endpoint
from actors.providers.errors import PermanentModelError, TransientModelError
from actors.providers.factory import PROVIDERS, make_provider
from actors.providers.mock import MockProvider
from actors.providers.openai_chat import OpenAIChatProvider
from actors.providers.outcomes import outcome_instruction, split_outcome

__all__ = [
    "PROVIDERS",
    "AnthropicProvider",
    "ChatMessage",
    "Endpoint",
    "MockProvider",
    "ModelProvider",
    "ModelReply",
    "ModelRequest",
    "OpenAIChatProvider",
    "PermanentModelError",
    "ToolCall",
    "ToolSpec",
    "TransientModelError",
    "Usage",
    "make_provider",
    "outcome_instruction",
    "split_outcome",
]
