"""`Task` templates and `TaskSchedule`: Orloj's fields as written, and located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from manifests.loader import load_paths
from manifests.models import TaskSchedule

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "manifests" / "examples" / "report-system"

TEMPLATE = """\
apiVersion: orloj.dev/v1
kind: Task
metadata:
  name: weekly-report-template
spec:
  mode: template
  system: report-system
  input:
    topic: AI startups
---
"""


def _load(tmp_path: Path, schedule_spec: str, template: str = TEMPLATE) -> list[str]:
    text = (
        template
        + "apiVersion: orloj.dev/v1\nkind: TaskSchedule\nmetadata:\n  name: nightly\nspec:\n"
        + schedule_spec
    )
    file = tmp_path / "schedule.yaml"
    file.write_text(text)
    result = load_paths([REPORT / "system.yaml", REPORT / "endpoint.yaml", file])
    return [str(e).replace(str(tmp_path) + "/", "") for e in result.errors]


def test_orloj_example_loads_with_its_defaults() -> None:
    result = load_paths([REPORT])
    assert result.catalog is not None, result.errors
    schedule = result.catalog.schedules["weekly-report"]
    assert isinstance(schedule, TaskSchedule)
    spec = schedule.spec
    assert (spec.schedule, spec.time_zone, spec.concurrency_policy) == (
        "0 9 * * 1",
        "America/Chicago",
        "forbid",
    )
    assert (spec.starting_deadline_seconds, spec.successful_history_limit) == (300, 10)
    template = result.catalog.tasks[spec.task_name]
    assert template.spec.system == "report-system"
    assert template.spec.input == {"topic": "AI startups"}


def test_defaults_are_orlojs(tmp_path: Path) -> None:
    assert (
        _load(tmp_path, '  task_ref: default/weekly-report-template\n  schedule: "0 2 * * *"\n')
        == []
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            '  task_ref: weekly-report-templat\n  schedule: "0 2 * * *"\n',
            "schedule.yaml:16: TaskSchedule/nightly: Task 'weekly-report-templat' is not "
            "defined; did you mean 'weekly-report-template'?",
        ),
        (
            '  task_ref: weekly-report-template\n  schedule: "0 25 * * *"\n',
            "schedule.yaml:17: TaskSchedule/nightly: spec.schedule: schedule '0 25 * * *' is "
            "not a valid cron expression",
        ),
        (
            '  task_ref: weekly-report-template\n  schedule: "0 2 * *"\n',
            "schedule.yaml:17: TaskSchedule/nightly: spec.schedule: schedule '0 2 * *' has 4 "
            "fields",
        ),
        (
            '  task_ref: weekly-report-template\n  schedule: "0 2 * * *"\n'
            "  time_zone: Europe/Pari\n",
            "schedule.yaml:18: TaskSchedule/nightly: spec.time_zone: time_zone 'Europe/Pari' "
            "is not an IANA time zone",
        ),
        (
            '  task_ref: weekly-report-template\n  schedule: "0 2 * * *"\n'
            "  concurrency_policy: replace\n",
            "schedule.yaml:18: TaskSchedule/nightly: spec.concurrency_policy: "
            "concurrency_policy 'replace' would cancel the running task, and Podium cannot "
            "cancel a task",
        ),
        (
            '  task_ref: weekly-report-template\n  schedule: "0 2 * * *"\n'
            "  concurency_policy: allow\n",
            "schedule.yaml:18: TaskSchedule/nightly: unknown field 'concurency_policy' in "
            "spec; did you mean 'concurrency_policy'?",
        ),
    ],
)
def test_errors_name_the_line_and_the_fix(tmp_path: Path, spec: str, expected: str) -> None:
    errors = _load(tmp_path, spec)
    assert len(errors) == 1, errors
    assert errors[0].startswith(expected), errors[0]


def test_seconds_field_and_allow(tmp_path: Path) -> None:
    spec = '  task_ref: weekly-report-template\n  schedule: "*/2 * * * * *"\n'
    assert _load(tmp_path, spec + "  concurrency_policy: allow\n") == []


def test_a_schedule_of_a_run_task_is_refused(tmp_path: Path) -> None:
    template = TEMPLATE.replace("mode: template", "mode: run")
    errors = _load(
        tmp_path, '  task_ref: weekly-report-template\n  schedule: "0 2 * * *"\n', template
    )
    assert errors == [
        "schedule.yaml:16: TaskSchedule/nightly: Task/weekly-report-template is of mode run (it "
        "runs once, when applied): a TaskSchedule starts a Task of `mode: template`"
    ]


def test_template_names_an_applied_system(tmp_path: Path) -> None:
    template = TEMPLATE.replace("system: report-system", "system: report-sytem")
    errors = _load(
        tmp_path, '  task_ref: weekly-report-template\n  schedule: "0 2 * * *"\n', template
    )
    assert errors == [
        "schedule.yaml:7: Task/weekly-report-template: AgentSystem 'report-sytem' is not "
        "defined; did you mean 'report-system'?"
    ]
