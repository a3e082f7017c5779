"""Agent `execution` as Orloj v0.3 runs it: the pure decisions (`actors.execution`) and the agent
loop that applies them, with the mock model, an allow-all gate and tools in memory (no Kafka)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from actors.agent_loop import AgentLoop
from actors.execution import (
    Again,
    Done,
    Refuse,
    Reuse,
    Run,
    Violation,
    check_call,
    check_final,
    contract_done,
    exhausted,
    offered,
)
from actors.profile import AgentProfile, ModelChoice
from actors.providers import MockProvider, ToolCall, ToolSpec
from actors.results import Failed, Finished
from actors.tools.base import ToolInvocation, ToolResult
from manifests.models import AgentExecution, AgentSpec, MockReply
from topics.messages import ContractEventData, Decision, Payload, Step, ToolCalledData

SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["title", "score"],
}


def rules(**fields: Any) -> AgentExecution:
    return AgentExecution.model_validate(fields)


def call(name: str, **arguments: Any) -> ToolCall:
    return ToolCall(id=f"c-{name}", name=name, arguments=arguments)


# -- the manifest ---------------------------------------------------------------------------


def test_defaults_are_orlojs() -> None:
    default = AgentExecution()
    assert (default.profile, default.duplicate_tool_call_policy) == ("dynamic", "short_circuit")
    assert default.on_contract_violation == "non_retryable_error"
    assert default.tool_use_behavior == "run_llm_again"


def test_normalized_as_orloj_does() -> None:
    r = rules(
        profile=" Contract ",
        tool_sequence=["search", " Search", "", "fetch"],
        required_output_markers=["A:", "A:", {"EVIDENCE": None}],
        on_contract_violation="OBSERVE",
    )
    assert r.profile == "contract" and r.on_contract_violation == "observe"
    assert r.tool_sequence == ["search", "fetch"]
    assert r.required_output_markers == ["A:", "EVIDENCE:"]  # `- EVIDENCE:` in YAML


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"profile": "contract"}, "tool_sequence` is required"),
        ({"duplicate_tool_call_policy": "allow"}, "short_circuit"),
        ({"tool_use_behavior": "stop"}, "stop_on_first_tool"),
        ({"output_schema": {"type": "array"}}, "must describe a JSON object"),
        ({"output_schema": {"type": "object", "required": 3}}, "not a valid JSON Schema"),
    ],
)
def test_refused(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        AgentSpec.model_validate({"model_ref": "m", "execution": fields})


# -- the pure decisions ---------------------------------------------------------------------


def test_short_circuit_stops_offering_and_reuses_identical_calls() -> None:
    r = rules()
    assert offered(r, ["search", "fetch"], ["Search"]) == ["fetch"]
    results = {"search\x00" + json.dumps({"q": "x"}): "found x"}
    reused = check_call(r, call("search", q="x"), ["search"], results)
    assert isinstance(reused, Reuse) and reused.content.startswith("found x\n")
    assert "not run again" in reused.content
    other = check_call(r, call("search", q="y"), ["search"], results)
    assert isinstance(other, Refuse) and "not offered again" in other.content
    assert check_call(r, call("fetch"), ["search"], results) == Run()


def test_deny_offers_everything_and_is_a_violation_only_under_contract() -> None:
    dynamic = rules(duplicate_tool_call_policy="deny")
    assert offered(dynamic, ["search"], ["search"]) == ["search"]
    results = {"search\x00{}": "found"}
    assert isinstance(check_call(dynamic, call("search"), ["search"], results), Reuse)
    assert check_call(dynamic, call("search", q="new"), ["search"], results) == Run()
    contract = rules(
        profile="contract", tool_sequence=["search"], duplicate_tool_call_policy="deny"
    )
    verdict = check_call(contract, call("search"), ["search"], results)
    assert isinstance(verdict, Violation)
    assert verdict.message == "duplicate successful tool call denied tool=search"
    assert isinstance(verdict.then, Refuse)


def test_contract_tools_outside_the_sequence_are_violations_that_still_run_when_observed() -> None:
    r = rules(profile="contract", tool_sequence=["search"])
    verdict = check_call(r, call("fetch"), [], {})
    assert verdict == Violation("tool not in declared sequence tool=fetch", Run())
    assert check_call(r, call("Search"), [], {}) == Run()


def test_contract_completion_and_final_answers() -> None:
    r = rules(profile="contract", tool_sequence=["a", "b"], required_output_markers=["DONE:"])
    assert not contract_done(r, ["a"], "DONE: yes")
    assert not contract_done(r, ["b", "a"], "no marker")
    assert contract_done(r, ["b", "a"], "DONE: yes")
    early = check_final(r, ["a", "b"], ["a"], "DONE: yes")
    assert isinstance(early, Again) and "b" in early.nudge
    never = check_final(r, ["a"], ["a"], "DONE: yes")  # b is not among the agent's tools
    assert never == Violation("expected tool=b before completion", None)
    unmarked = check_final(r, ["a", "b"], ["a", "b"], "yes")
    assert isinstance(unmarked, Again) and "DONE:" in unmarked.nudge
    assert check_final(r, ["a", "b"], ["a", "b"], "DONE: yes") == Done()
    assert exhausted(r, ["a"]) == Violation(
        "max_steps reached before tool sequence completion expected tool=b"
    )
    assert exhausted(r, ["a", "b"]) is None
    assert check_final(rules(), [], [], "anything") == Done()


def test_output_schema_answers() -> None:
    r = rules(output_schema=SCHEMA)
    assert check_final(r, [], [], '{"title": "t", "score": 3}') == Done()
    bad = check_final(r, [], [], '{"title": "t", "score": "high"}')
    assert isinstance(bad, Violation) and "score: 'high' is not of type 'integer'" in bad.message
    prose = check_final(r, [], [], "Here you go")
    assert isinstance(prose, Violation) and "not JSON" in prose.message


# -- the loop -------------------------------------------------------------------------------


class AllowAll:
    def __init__(self) -> None:
        self.calls = 0

    async def authorize(self, **kwargs: Any) -> Decision:
        self.calls += 1
        return Decision(request_id=f"r{self.calls}", task_id=kwargs["task_id"], decision="allow")


class Tools:
    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.runs: Counter[str] = Counter()
        self.fail = fail

    def spec_for(self, name: str) -> ToolSpec:
        return ToolSpec(name=name, parameters={"type": "object"})

    async def invoke(self, invocation: ToolInvocation) -> ToolResult:
        self.runs[invocation.tool] += 1
        if invocation.tool in self.fail:
            return ToolResult(ok=False, content="error: down", error="down")
        return ToolResult(ok=True, content=f"{invocation.tool} says {invocation.arguments}")


class Sink:
    def __init__(self) -> None:
        self.payloads: list[Payload] = []

    async def emit(self, step: Step, payload: Payload, *, agent: str) -> None:
        self.payloads.append(payload)

    def contract(self) -> list[ContractEventData]:
        return [p for p in self.payloads if isinstance(p, ContractEventData)]


def reply(content: str = "", *tools: str | tuple[str, dict[str, Any]]) -> MockReply:
    calls = [
        {"name": t, "arguments": {}} if isinstance(t, str) else {"name": t[0], "arguments": t[1]}
        for t in tools
    ]
    return MockReply.model_validate({"content": content, "tool_calls": calls})


async def run(
    script: list[MockReply],
    tools: list[str],
    toolbox: Tools | None = None,
    max_steps: int = 10,
    **execution: Any,
) -> tuple[Finished | Failed, Tools, Sink, MockProvider]:
    provider = RecordingMock(script={"agent": script})
    toolbox = toolbox or Tools()
    sink = Sink()
    profile = AgentProfile(
        name="agent",
        system_prompt="Work.",
        models=[ModelChoice(endpoint="e", provider_name="mock", model="mock-1", provider=provider)],
        tools=tools,
        max_steps=max_steps,
        execution=rules(**execution),
    )
    step = Step(task_id="t1", system="s", agent="agent", step_id="agent-1", task_input="go")
    result = await AgentLoop(gate=AllowAll(), tools=toolbox, usage=sink).run(profile, step)
    assert isinstance(result, Finished | Failed)
    return result, toolbox, sink, provider


class RecordingMock(MockProvider):
    """The mock, remembering what each call offered and asked for."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.offered: list[list[str]] = []
        self.schemas: list[dict[str, Any] | None] = []

    async def complete(self, request: Any) -> Any:
        self.offered.append([tool.name for tool in request.tools])
        self.schemas.append(request.output_schema)
        return await super().complete(request)


async def test_dynamic_short_circuit_reuses_a_repeated_call_and_stops_offering_the_tool() -> None:
    script = [
        reply("", ("search", {"q": "x"})),
        reply("", ("search", {"q": "x"})),
        reply("the answer"),
    ]
    result, tools, _, model = await run(script, ["search", "fetch"])
    assert isinstance(result, Finished) and result.output == "the answer"
    assert tools.runs == {"search": 1}
    assert model.offered == [["search", "fetch"], ["fetch"], ["fetch"]]


async def test_deny_outside_a_contract_offers_the_tool_again_and_runs_new_arguments() -> None:
    script = [reply("", ("search", {"q": "x"})), reply("", ("search", {"q": "y"})), reply("ok")]
    result, tools, _, model = await run(script, ["search"], duplicate_tool_call_policy="deny")
    assert isinstance(result, Finished)
    assert tools.runs == {"search": 2}
    assert model.offered == [["search"], ["search"], ["search"]]


async def test_stop_on_first_tool_makes_the_tool_result_the_output() -> None:
    script = [reply("", ("fetch", {"id": 7}), "search"), reply("never asked")]
    result, tools, _, model = await run(
        script, ["fetch", "search"], tool_use_behavior="stop_on_first_tool"
    )
    assert isinstance(result, Finished)
    assert result.output == "fetch says {'id': 7}"
    assert (result.turns, len(model.offered), tools.runs) == (1, 1, {"fetch": 1})


async def test_stop_on_first_tool_waits_for_a_tool_that_succeeds() -> None:
    script = [reply("", "flaky"), reply("", "fetch")]
    result, _, _, _ = await run(
        script,
        ["flaky", "fetch"],
        Tools(fail=frozenset({"flaky"})),
        tool_use_behavior="stop_on_first_tool",
    )
    assert isinstance(result, Finished) and result.output == "fetch says {}"
    assert result.turns == 2


async def test_a_contract_ends_right_after_its_tools_when_the_text_has_the_markers() -> None:
    script = [reply("RESULT: pending", "a", "b"), reply("never asked")]
    result, _, sink, model = await run(
        script,
        ["a", "b"],
        profile="contract",
        tool_sequence=["a", "b"],
        required_output_markers=["RESULT:"],
    )
    assert isinstance(result, Finished) and result.output == "RESULT: pending"
    assert len(model.offered) == 1 and sink.contract() == []


async def test_a_contract_answer_before_its_tools_gets_another_turn() -> None:
    script = [reply("I am done"), reply("", "a"), reply("EVIDENCE: a")]
    result, tools, sink, _ = await run(
        script,
        ["a"],
        profile="contract",
        tool_sequence=["a"],
        required_output_markers=["EVIDENCE:"],
    )
    assert isinstance(result, Finished) and result.output == "EVIDENCE: a"
    assert tools.runs == {"a": 1} and sink.contract() == []


async def test_a_tool_outside_the_sequence_fails_the_step_by_default() -> None:
    script = [reply("", "b")]
    result, tools, sink, _ = await run(script, ["a", "b"], profile="contract", tool_sequence=["a"])
    assert isinstance(result, Failed)
    assert result.error == (
        "agent contract violation: agent=agent step=1 error=tool not in declared sequence tool=b"
    )
    assert tools.runs == {}
    [event] = sink.contract()
    assert (event.kind, event.on_contract_violation) == ("violation", "non_retryable_error")


async def test_observe_records_the_violation_and_goes_on() -> None:
    script = [reply("", "b"), reply("", "a"), reply("done")]
    result, tools, sink, _ = await run(
        script,
        ["a", "b"],
        profile="contract",
        tool_sequence=["a"],
        on_contract_violation="observe",
    )
    assert isinstance(result, Finished)
    assert tools.runs == {"a": 1, "b": 1}
    assert [e.message for e in sink.contract()] == ["tool not in declared sequence tool=b"]


async def test_contract_deny_refuses_a_repeated_call() -> None:
    script = [reply("", "a"), reply("", "a"), reply("done")]
    common = {"profile": "contract", "tool_sequence": ["a", "b"]}
    common["duplicate_tool_call_policy"] = "deny"
    failed, _, _, _ = await run(script, ["a", "b"], **common)
    assert isinstance(failed, Failed)
    assert failed.error.endswith("duplicate successful tool call denied tool=a")
    observed, tools, sink, _ = await run(
        [reply("", "a"), reply("", "a"), reply("", "b"), reply("done")],
        ["a", "b"],
        on_contract_violation="observe",
        **common,
    )
    assert isinstance(observed, Finished) and tools.runs == {"a": 1, "b": 1}
    assert len(sink.contract()) == 1


async def test_max_steps_with_tools_missing_is_a_violation_and_markers_only_a_warning() -> None:
    missing, _, _, _ = await run(
        [reply("", "a")], ["a", "b"], max_steps=2, profile="contract", tool_sequence=["a", "b"]
    )
    assert isinstance(missing, Failed)
    assert missing.error.endswith(
        "max_steps reached before tool sequence completion expected tool=b"
    )
    unmarked, _, sink, _ = await run(
        [reply("", "a"), reply("no markers")],
        ["a"],
        max_steps=3,
        profile="contract",
        tool_sequence=["a"],
        required_output_markers=["EVIDENCE:"],
    )
    assert isinstance(unmarked, Finished) and unmarked.output == "no markers"
    assert [e.kind for e in sink.contract()] == ["warning"]


async def test_output_schema_is_asked_for_and_checked() -> None:
    good = [reply('{"title": "t", "score": 9}')]
    result, _, _, model = await run(good, [], output_schema=SCHEMA)
    assert isinstance(result, Finished) and json.loads(result.output)["score"] == 9
    assert model.schemas == [SCHEMA]
    bad, _, sink, _ = await run([reply('{"title": "t"}')], [], output_schema=SCHEMA)
    assert isinstance(bad, Failed)
    assert "output does not match output_schema: (root): 'score' is a required property" in (
        bad.error
    )
    assert len(sink.contract()) == 1


async def test_the_unscripted_mock_answers_in_the_schema() -> None:
    result, _, _, _ = await run([], [], output_schema=SCHEMA)
    assert isinstance(result, Finished)
    value = json.loads(result.output)
    assert set(value) == {"title", "score"} and value["score"] == 0


async def test_tool_called_events_are_only_for_calls_that_ran() -> None:
    script = [reply("", ("search", {"q": "x"})), reply("", ("search", {"q": "x"})), reply("ok")]
    _, _, sink, _ = await run(script, ["search"])
    assert [p.tool for p in sink.payloads if isinstance(p, ToolCalledData)] == ["search"]
