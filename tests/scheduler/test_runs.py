"""An applied Task's attempts, decided without Kafka: submitted once, retried with Orloj's
doubling backoff up to `retry.max_attempts`, then DeadLetter; a refusal is Failed at once. And
the phase `podium get task` shows, from that state and the ledger's view of the attempt."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from manifests.loader import load_paths
from manifests.models import Task
from scheduler.runs import (
    Outcome,
    RunState,
    attempt_id,
    decide,
    decode_runs,
    request_for,
    retryable,
    state_key,
    work_order,
)
from scheduler.state import decode_states
from scheduler.status import ledger_phase, task_phase

REPORT = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "report-system"
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _task(**spec: Any) -> Task:
    return Task.model_validate(
        {
            "apiVersion": "orloj.dev/v1",
            "kind": "Task",
            "metadata": {"name": "weekly-report", "labels": {"team": "research"}},
            "spec": {"system": "report-system", "input": {"topic": "AI"}, **spec},
        }
    )


def _never(_: str) -> Outcome | None:
    return None


def _ends(status: str, error: str = "", at: datetime = T0) -> Any:
    return lambda _: (status, at, error)


def test_the_first_evaluation_submits_attempt_one_under_the_tasks_name() -> None:
    step = decide(_task(), None, now=T0, ended=_never, timeout_s=600)
    assert step.submit is not None and step.state is not None
    assert (step.submit.number, step.submit.task_id) == (1, "weekly-report")
    assert step.state.phase == "Pending"
    request = request_for(_task(priority="high"), step.submit, timeout_s=600)
    assert request.task_id == "weekly-report"
    assert request.input == {"topic": "AI"}
    assert request.submitted_by == "task/weekly-report"
    assert request.labels == {
        "team": "research",
        "orloj.dev/task": "weekly-report",
        "orloj.dev/task-attempt": "1",
        "orloj.dev/priority": "high",
    }
    # While it runs, nothing changes: no second submission.
    again = decide(_task(), step.state, now=T0 + timedelta(seconds=5), ended=_never, timeout_s=600)
    assert again.state is None and again.submit is None


def test_a_success_ends_it_and_nothing_runs_again() -> None:
    first = decide(_task(), None, now=T0, ended=_never, timeout_s=600).state
    done = decide(_task(), first, now=T0, ended=_ends("succeeded"), timeout_s=600).state
    assert done is not None and done.phase == "Succeeded" and done.done
    assert done.attempts[0].status == "succeeded"
    later = decide(_task(), done, now=T0 + timedelta(days=1), ended=_never, timeout_s=600)
    assert later.state is None and later.submit is None


def test_failures_retry_with_doubling_backoff_then_dead_letter() -> None:
    task = _task(retry={"max_attempts": 3, "backoff": "2s"})
    state = decide(task, None, now=T0, ended=_never, timeout_s=600).state
    assert state is not None
    ids, now = ["weekly-report"], T0
    for number, delay in ((1, 2), (2, 4)):
        failed_at = now + timedelta(seconds=1)
        state = decide(
            task, state, now=failed_at, ended=_ends("failed", "boom", failed_at), timeout_s=600
        ).state
        assert state is not None and state.phase == "Pending"
        assert state.next_attempt_at == failed_at + timedelta(seconds=delay)
        assert state.attempts[-1].status == "failed" and state.attempts[-1].error == "boom"
        early = decide(
            task, state, now=failed_at + timedelta(seconds=delay - 0.5), ended=_never, timeout_s=600
        )
        assert early.submit is None, "an attempt started before its backoff"
        now = failed_at + timedelta(seconds=delay)
        step = decide(task, state, now=now, ended=_never, timeout_s=600)
        assert step.submit is not None and step.state is not None
        assert step.submit.number == number + 1
        ids.append(step.submit.task_id)
        state = step.state
    assert ids == ["weekly-report", "weekly-report:attempt-2", "weekly-report:attempt-3"]
    last = decide(task, state, now=now, ended=_ends("failed", "boom"), timeout_s=600).state
    assert last is not None and last.phase == "DeadLetter" and last.last_error == "boom"
    assert [a.status for a in last.attempts] == ["failed"] * 3


def test_a_refusal_fails_at_once() -> None:
    task = _task(retry={"max_attempts": 3})
    state = decide(task, None, now=T0, ended=_never, timeout_s=600).state
    error = "writer: model gpt-4o on openai denied by policy (budget): over the budget"
    assert not retryable(error) and retryable("writer: max_steps exhausted")
    failed = decide(task, state, now=T0, ended=_ends("failed", error), timeout_s=600).state
    assert failed is not None and failed.phase == "Failed" and len(failed.attempts) == 1


def test_an_attempt_without_a_result_times_out_and_is_retried() -> None:
    task = _task(retry={"max_attempts": 2, "backoff": "1s"})
    state = decide(task, None, now=T0, ended=_never, timeout_s=60).state
    late = T0 + timedelta(seconds=61)
    step = decide(task, state, now=late, ended=_never, timeout_s=60)
    assert step.state is not None and step.state.next_attempt_at == late + timedelta(seconds=1)
    assert step.state.attempts[0].error.startswith("timed out")


def test_runs_and_schedules_share_the_state_topic_apart() -> None:
    state = decide(_task(), None, now=T0, ended=_never, timeout_s=600).state
    assert state is not None
    latest = {state_key("weekly-report"): state.encode()}
    assert decode_runs(latest) == {"weekly-report": state}
    assert decode_states(latest) == {}
    assert attempt_id("x", 1) == "x" and attempt_id("x", 7) == "x:attempt-7"


def test_phases_as_orloj_names_them() -> None:
    task = _task(retry={"max_attempts": 2, "backoff": "1s"})
    assert task_phase(task, None, None, waiting=False, timeout_s=600) == "Pending"
    state = decide(task, None, now=T0, ended=_never, timeout_s=600).state

    def phase(
        ledger: dict[str, Any] | None, *, waiting: bool = False, run: RunState | None = state
    ) -> str:
        return task_phase(task, run, ledger, waiting=waiting, timeout_s=600, now=T0)

    assert phase(None) == "Pending"  # submitted, not in the ledger yet
    assert phase({"status": "requested"}) == "Pending"
    assert phase({"status": "running"}) == "Running"
    assert phase({"status": "running"}, waiting=True) == "WaitingApproval"
    assert phase({"status": "succeeded"}) == "Succeeded"
    # The ledger saw the failure before the scheduler: a retry follows, so Pending.
    assert phase({"status": "failed", "error": "boom"}) == "Pending"
    retrying = decide(task, state, now=T0, ended=_ends("failed", "boom"), timeout_s=600).state
    assert phase({"status": "failed"}, run=retrying) == "Pending"
    assert retrying is not None
    second = decide(
        task, retrying, now=T0 + timedelta(seconds=1), ended=_never, timeout_s=600
    ).state
    assert phase({"status": "failed", "error": "boom"}, run=second) == "DeadLetter"
    assert phase({"status": "failed", "error": "denied by policy"}, run=second) == "Failed"
    # A task of the ledger alone (`podium run`).
    assert [
        ledger_phase(s, False) for s in ("unknown", "requested", "running", "succeeded", "failed")
    ] == [
        "Pending",
        "Pending",
        "Running",
        "Succeeded",
        "Failed",
    ]
    assert ledger_phase("running", True) == "WaitingApproval"


def test_a_tick_submits_by_priority(tmp_path: Path) -> None:
    """High Tasks (and schedules of high templates) first, then normal, then low."""
    docs = [
        _doc("Task", "z-high", {"system": "report-system", "priority": "high"}),
        _doc("Task", "a-low", {"system": "report-system", "priority": "low"}),
        _doc("Task", "m-normal", {"system": "report-system"}),
        _doc("Task", "tpl", {"system": "report-system", "mode": "template", "priority": "high"}),
        _doc("TaskSchedule", "nightly", {"task_ref": "tpl", "schedule": "0 2 * * *"}),
    ]
    file = tmp_path / "tasks.yaml"
    file.write_text("---\n".join(docs))
    result = load_paths([REPORT / "system.yaml", REPORT / "endpoint.yaml", file])
    assert result.catalog is not None, result.errors
    assert [key for key, _ in work_order(result.catalog)] == [
        "nightly",
        "task:z-high",
        "task:m-normal",
        "task:a-low",
    ]


def _doc(kind: str, name: str, spec: dict[str, Any]) -> str:
    return (
        json.dumps(
            {"apiVersion": "orloj.dev/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
        )
        + "\n"
    )
