"""`podium actor AGENT --worker NAME`: what an Orloj `Worker` means for an actor replica on Kafka.

Every replica of an agent's consumer group takes steps of any task (Kafka assigns partitions,
not tasks), so a Worker does not choose tasks; it bounds and checks the replica that names it:

- `max_concurrent_tasks` is the replica's steps in flight (`--max-in-flight`, which it
  replaces; both at once is refused);
- `capabilities.supported_models`: the replica refuses to start unless every model its agents
  call (primary and fallbacks) is listed, as `model` or `endpoint/model`; empty = any;
- `region` and `capabilities.gpu` are refused when set (a region other than `""`/`default`,
  `gpu: true`): steps carry no Task requirements to match them against yet.
"""

from __future__ import annotations

from collections.abc import Sequence

from actors.settings import ActorSettings
from manifests.catalog import Catalog
from podium.core.errors import PodiumError

DEFAULT_REGIONS = ("", "default")


class WorkerRefused(PodiumError):
    """The replica cannot serve as the named Worker; the message says why."""


def worker_settings(
    catalog: Catalog, worker: str, agents: Sequence[str], settings: ActorSettings
) -> ActorSettings:
    """`settings` bounded by Worker `worker`, once its capabilities are checked against the
    models of `agents`."""
    found = catalog.workers.get(worker)
    if found is None:
        known = ", ".join(catalog.workers) or "none"
        raise WorkerRefused(f"Worker/{worker} is not applied (applied: {known})")
    spec = found.spec
    if spec.region not in DEFAULT_REGIONS or spec.capabilities.gpu:
        raise WorkerRefused(
            f"Worker/{worker}: region {spec.region!r} and gpu {spec.capabilities.gpu} cannot be "
            "honoured: steps carry no Task requirements to match them yet (leave region "
            "default and gpu false)"
        )
    supported = set(spec.capabilities.supported_models)
    if supported:
        for agent in agents:
            if agent not in catalog.agents:
                raise WorkerRefused(f"Worker/{worker}: agent {agent!r} is not applied")
            models = [catalog.model_for(agent), *catalog.fallbacks_for(agent)]
            for endpoint, model in models:
                if model not in supported and f"{endpoint.name}/{model}" not in supported:
                    raise WorkerRefused(
                        f"Worker/{worker} does not support model {model!r} of agent {agent!r} "
                        f"(ModelEndpoint/{endpoint.name}); supported_models: "
                        f"{', '.join(sorted(supported))}"
                    )
    return settings.model_copy(update={"max_in_flight": spec.max_concurrent_tasks})
