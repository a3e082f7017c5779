"""How the agent loop of one step ends (`LoopResult`): plain data, read by the step transition.

- `Finished`: the model answered without tool calls (with an outcome when one was asked for);
- `Delegated`: the supervisor's model called `delegate`; the step parks until the worker answers;
- `AwaitingApproval`: the policy asked for a person's approval of a tool call; the step parks;
- `Failed`: a permanent error, `max_steps` exhausted, or the time is up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.providers.base import ToolCall
from topics.messages import Decision


@dataclass(frozen=True, slots=True)
class Finished:
    output: str
    outcome: str | None
    turns: int
    model_calls: int


@dataclass(frozen=True, slots=True)
class Delegated:
    worker: str
    instruction: str
    tool_call_id: str
    conversation: dict[str, Any]
    """The parked conversation (`Conversation.dump`)."""
    model_calls: int


@dataclass(frozen=True, slots=True)
class AwaitingApproval:
    approval_id: str
    decision: Decision
    tool_call: ToolCall
    conversation: dict[str, Any]
    """The parked conversation (`Conversation.dump`)."""
    model_calls: int


@dataclass(frozen=True, slots=True)
class Failed:
    error: str
    model_calls: int


LoopResult = Finished | Delegated | AwaitingApproval | Failed
