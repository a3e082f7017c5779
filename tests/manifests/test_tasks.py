"""`Task` of mode run (Orloj's default): its fields as Orloj writes them, what Podium refuses
because it cannot honour it, and the notes `podium validate` prints for what it does not do."""

from __future__ import annotations

from pathlib import Path

import pytest

from manifests.loader import load_paths
from manifests.task_checks import task_notes

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "manifests" / "examples" / "report-system"
ORLOJ = Path("/work/orloj-src/examples/resources")

TASK = """\
apiVersion: orloj.dev/v1
kind: Task
metadata:
  name: weekly-report
spec:
  system: report-system
  input:
    topic: AI startups
"""


def _load(tmp_path: Path, extra: str = "") -> tuple[list[str], list[str]]:
    file = tmp_path / "task.yaml"
    file.write_text(TASK + extra)
    result = load_paths([REPORT / "system.yaml", REPORT / "endpoint.yaml", file])
    errors = [str(e).replace(str(tmp_path) + "/", "") for e in result.errors]
    notes = task_notes(result.catalog) if result.catalog is not None else []
    return errors, notes


def test_a_run_task_loads_with_orlojs_defaults(tmp_path: Path) -> None:
    file = tmp_path / "task.yaml"
    file.write_text(TASK)
    result = load_paths([REPORT / "system.yaml", REPORT / "endpoint.yaml", file])
    assert result.catalog is not None, result.errors
    spec = result.catalog.tasks["weekly-report"].spec
    assert (spec.mode, spec.priority, spec.retry.max_attempts, spec.retry.backoff) == (
        "run",
        "normal",
        1,
        0.0,
    )
    assert spec.input == {"topic": "AI startups"}
    assert spec.retry_delays == []
    assert task_notes(result.catalog) == []


def test_backoff_doubles_per_attempt_as_in_orloj(tmp_path: Path) -> None:
    errors, _ = _load(tmp_path, "  retry: {max_attempts: 4, backoff: 5s}\n  priority: High\n")
    assert errors == []
    file = tmp_path / "task.yaml"
    result = load_paths([REPORT / "system.yaml", REPORT / "endpoint.yaml", file])
    assert result.catalog is not None
    spec = result.catalog.tasks["weekly-report"].spec
    assert spec.retry_delays == [5.0, 10.0, 20.0]
    assert spec.priority == "high"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "  priority: urgent\n",
            "task.yaml:9: Task/weekly-report: spec.priority: priority 'urgent': Podium orders "
            "submissions by high, normal or low",
        ),
        (
            "  requirements: {region: eu-west-1}\n",
            "task.yaml:9: Task/weekly-report: spec.requirements.region: region 'eu-west-1': "
            "Podium places tasks in no region",
        ),
        (
            "  requirements: {gpu: true}\n",
            "task.yaml:9: Task/weekly-report: spec.requirements.gpu: gpu: true cannot be honoured",
        ),
        (
            "  retry: {max_attempts: 2, backoff: soon}\n",
            "task.yaml:9: Task/weekly-report: spec.retry.backoff: 'soon' is not a duration",
        ),
        (
            "  mode: once\n",
            "task.yaml:9: Task/weekly-report: spec.mode: 'once' is not one of run, template",
        ),
    ],
)
def test_what_cannot_be_honoured_is_refused(tmp_path: Path, extra: str, expected: str) -> None:
    errors, _ = _load(tmp_path, extra)
    assert len(errors) == 1, errors
    assert errors[0].startswith(expected), errors[0]


def test_what_is_not_done_is_noted(tmp_path: Path) -> None:
    errors, notes = _load(
        tmp_path,
        "  requirements: {region: default, model: gpt-4o-mini}\n"
        "  message_retry: {max_attempts: 2, backoff: 250ms}\n",
    )
    assert errors == []
    assert len(notes) == 2, notes
    assert notes[0].startswith("Task/weekly-report: message_retry is not applied per task")
    assert notes[1].startswith(
        "Task/weekly-report: requirements.model 'gpt-4o-mini' is not the model of every agent of "
        "report-system (report-researcher: openai/gpt-4o, report-writer: openai/gpt-4o)"
    )
    # The model every agent runs is no note.
    _, notes = _load(tmp_path, "  requirements: {model: gpt-4o}\n")
    assert notes == []


def test_a_long_name_leaves_room_for_the_attempts(tmp_path: Path) -> None:
    file = tmp_path / "task.yaml"
    file.write_text(TASK.replace("name: weekly-report", "name: " + "r" * 186))
    result = load_paths([REPORT / "system.yaml", REPORT / "endpoint.yaml", file])
    assert [e.message for e in result.errors] == [
        "a Task of mode run has a name of at most 185 characters (its attempts' task ids add "
        "up to 15)"
    ]


@pytest.mark.skipif(not ORLOJ.is_dir(), reason="Orloj's sources are not on this machine")
def test_orlojs_task_examples_have_no_problem_of_their_own() -> None:
    """Every file of Orloj's examples/resources/tasks/ with the resources it names: the problems
    left are of other kinds (agents' memory, loop graphs, endpoints' providers), none of a Task."""
    result = load_paths([ORLOJ])
    tasks = sorted((ORLOJ / "tasks").glob("*.yaml"))
    assert len(tasks) == 5
    own = [e for e in result.errors if e.kind == "Task" or "tasks/" in e.file]
    assert own == []
