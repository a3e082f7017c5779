"""Orloj's per-agent `execution` rules as pure decisions of the agent loop (no I/O here).

- `duplicate_tool_call_policy` (every profile): `short_circuit` (the default) does not offer a tool
  again once it succeeded in the step, and answers a repeated identical call with the earlier
  result (with a hint that it was not run again) instead of running it; a repeated call with other
  arguments is refused back to the model. `deny` offers every tool every turn; under the
  `contract` profile a repeated call of a tool that succeeded is a contract violation, otherwise
  an identical call still reuses the earlier result.
- `profile: contract`: the tools of `tool_sequence` (a set, any order) must succeed, and the
  answer must hold every `required_output_markers`. Once they have all succeeded, the step ends
  right after that turn's tool calls when the turn's text holds the markers; an answer that comes
  before them gets another turn (told what is missing). A tool outside the sequence is a
  violation; so is `max_steps` with tools still missing. Markers still missing at `max_steps`
  (the tools done) are only a warning: the step finishes.
- `on_contract_violation`: `non_retryable_error` (the default) fails the step, no retry;
  `observe` records the violation (`agent.contract_violation`) and goes on.
- `tool_use_behavior: stop_on_first_tool`: the first successful tool call ends the step, and the
  tool's result is the agent's output (`run_llm_again`, the default, gives the model a turn).
- `output_schema` (Podium's): the final answer must be JSON matching it; one that is not is a
  contract violation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from actors.providers.base import ToolCall
from manifests.models import AgentExecution


def call_key(call: ToolCall) -> str:
    """What makes two calls the same call: the tool (case-insensitive) and its arguments."""
    return f"{call.name.lower()}\x00{json.dumps(call.arguments, sort_keys=True)}"


@dataclass(frozen=True, slots=True)
class Run:
    """Run the call (authorized, as every call)."""


@dataclass(frozen=True, slots=True)
class Reuse:
    """Answer with the earlier identical call's result; nothing runs."""

    content: str


@dataclass(frozen=True, slots=True)
class Refuse:
    """Tell the model the call is not made."""

    content: str


@dataclass(frozen=True, slots=True)
class Violation:
    """A contract violation; `then` is what happens when it is only observed."""

    message: str
    then: Run | Refuse | None = None


CallVerdict = Run | Reuse | Refuse | Violation


def offered(rules: AgentExecution, tools: Sequence[str], succeeded: Iterable[str]) -> list[str]:
    """The tools offered to the model this turn."""
    if rules.duplicate_tool_call_policy != "short_circuit":
        return list(tools)
    done = {name.lower() for name in succeeded}
    return [tool for tool in tools if tool.lower() not in done]


def check_call(
    rules: AgentExecution, call: ToolCall, succeeded: Iterable[str], results: dict[str, str]
) -> CallVerdict:
    """What to do with a tool call the model made (not `delegate`)."""
    contract = rules.profile == "contract"
    if call.name.lower() in {name.lower() for name in succeeded}:
        if contract and rules.duplicate_tool_call_policy == "deny":
            refusal = Refuse(
                f"denied: {call.name} already succeeded in this step and is not called again "
                "(duplicate_tool_call_policy deny)"
            )
            return Violation(f"duplicate successful tool call denied tool={call.name}", refusal)
        earlier = results.get(call_key(call))
        if earlier is not None:
            return Reuse(
                f"{earlier}\n\n(The result of your earlier identical call of {call.name}; it was "
                "not run again. Do not call it again: go on with your answer.)"
            )
        if rules.duplicate_tool_call_policy == "short_circuit":
            return Refuse(
                f"error: {call.name} already succeeded in this step and is not offered again; "
                "use its earlier result"
            )
    if contract and call.name.lower() not in {t.lower() for t in rules.tool_sequence}:
        return Violation(f"tool not in declared sequence tool={call.name}", Run())
    return Run()


def missing_tools(rules: AgentExecution, succeeded: Iterable[str]) -> list[str]:
    """The tools of the contract's sequence that have not succeeded yet (none outside one)."""
    if rules.profile != "contract":
        return []
    done = {name.lower() for name in succeeded}
    return [tool for tool in rules.tool_sequence if tool.lower() not in done]


def missing_markers(rules: AgentExecution, output: str) -> list[str]:
    if rules.profile != "contract":
        return []
    return [marker for marker in rules.required_output_markers if marker not in output]


def contract_done(rules: AgentExecution, succeeded: Iterable[str], text: str) -> bool:
    """A contract step ends after a turn's tool calls once every tool of the sequence has
    succeeded and the turn's text holds the markers."""
    return (
        rules.profile == "contract"
        and not missing_tools(rules, succeeded)
        and not missing_markers(rules, text)
    )


@dataclass(frozen=True, slots=True)
class Done:
    """The answer stands."""


@dataclass(frozen=True, slots=True)
class Again:
    """Give the model another turn, with this message."""

    nudge: str


FinalVerdict = Done | Again | Violation


def check_final(
    rules: AgentExecution, tools: Sequence[str], succeeded: Iterable[str], output: str
) -> FinalVerdict:
    """What to do with an answer (a reply without tool calls)."""
    succeeded = list(succeeded)
    missing = missing_tools(rules, succeeded)
    if missing:
        if not {t.lower() for t in missing} & {t.lower() for t in tools}:
            return Violation(f"expected tool={missing[0]} before completion", None)
        return Again(
            "Before you answer, call the tools you must still call: " + ", ".join(missing) + "."
        )
    markers = missing_markers(rules, output)
    if markers:
        return Again("Your answer must contain: " + ", ".join(markers) + ". Answer again.")
    if rules.output_schema is not None:
        problem = schema_problem(rules.output_schema, output)
        if problem is not None:
            return Violation(f"output does not match output_schema: {problem}", None)
    return Done()


def schema_problem(schema: dict[str, Any], output: str) -> str | None:
    """Why `output` is not JSON matching `schema` (None when it is)."""
    try:
        value = json.loads(output)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    error = next(iter(Draft202012Validator(schema).iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"


def exhausted(rules: AgentExecution, succeeded: Iterable[str]) -> Violation | None:
    """At `max_steps`, a contract with tools still missing is violated."""
    missing = missing_tools(rules, succeeded)
    if missing:
        return Violation(
            f"max_steps reached before tool sequence completion expected tool={missing[0]}"
        )
    return None
