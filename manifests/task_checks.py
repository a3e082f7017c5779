"""Checks of `Task`s beyond their own fields: what a trigger may start, and what Podium reports
it does not honour (`podium validate` and `podium apply` print these notes; they refuse nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from manifests.errors import ManifestError
from manifests.models import MessageRetry, Task, TaskSchedule, TaskWebhook

if TYPE_CHECKING:
    from manifests.catalog import Catalog
    from manifests.loader import Located


def trigger_errors(unique: Sequence[Located]) -> list[ManifestError]:
    """A TaskSchedule or TaskWebhook starts a template; a Task of mode run runs only when
    applied (as in Orloj: `task template ... must set spec.mode=template`)."""
    runs = {
        i.resource.name
        for i in unique
        if isinstance(i.resource, Task) and i.resource.spec.mode == "run"
    }
    errors: list[ManifestError] = []
    for item in unique:
        res = item.resource
        if isinstance(res, TaskSchedule | TaskWebhook) and res.spec.task_name in runs:
            errors.append(
                item.error(
                    ("spec", "task_ref"),
                    f"Task/{res.spec.task_name} is of mode run (it runs once, when applied): "
                    f"a {res.kind_name} starts a Task of `mode: template`",
                )
            )
    return errors


def task_notes(catalog: Catalog, only: set[str] | None = None) -> list[str]:
    """What a Task (of `only`, default every one) asks that Podium does not do, one line each."""
    notes: list[str] = []
    for name, task in sorted(catalog.tasks.items()):
        if only is not None and name not in only:
            continue
        spec = task.spec
        where = f"Task/{name}"
        if spec.message_retry != MessageRetry():
            notes.append(
                f"{where}: message_retry is not applied per task: Podium retries a step that "
                "hits a transient error as the actors' settings say (PODIUM_ACTOR_STEP_RETRY_"
                "ATTEMPTS, PODIUM_ACTOR_STEP_RETRY_BACKOFF_S); `retry` re-runs the whole task"
            )
        wanted = spec.requirements.model
        system = catalog.systems.get(spec.system)
        if wanted and system is not None:
            others = []
            for agent in system.spec.agents:
                if agent in catalog.agents:
                    endpoint, model = catalog.model_for(agent)
                    if model != wanted:
                        others.append(f"{agent}: {endpoint.name}/{model}")
            if others:
                notes.append(
                    f"{where}: requirements.model {wanted!r} is not the model of every agent of "
                    f"{spec.system} ({', '.join(others)}); Podium has no workers to place a "
                    "task by model, so each agent calls its own model"
                )
        if spec.mode == "template" and spec.retry.max_attempts > 1:
            notes.append(
                f"{where}: retry applies to a Task of mode run; the tasks a TaskSchedule or "
                "TaskWebhook starts from this template run once"
            )
    return notes
