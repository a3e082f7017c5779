"""`delete_keys`: remove applied resources from the manifests topic (`podium delete`).

A deletion is a tombstone on the resource's key (a reader drops the key on a None value). The
resources that stay are checked as `apply` checks them: when one of them still refers to a
resource being deleted (an AgentSystem naming the agent, an agent naming the tool or endpoint,
a TaskSchedule naming the task...) nothing is deleted and the referrers are listed. Deleting the
referrer with what it refers to, in one call, is fine. The routing tables are compiled again
from what stays, as `apply` does: a deleted system's table is deleted with it, a changed one is
published, all in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from manifests._topic import ROUTING_KIND, record_key
from manifests.apply import plan, publish, read_screened, stale_keys
from manifests.errors import ManifestError, suggest
from manifests.loader import Located, build, parse_files
from manifests.models import KINDS
from podium.core.settings import KafkaSettings
from topics.names import TopicNames


@dataclass(slots=True)
class DeleteReport:
    """What `delete` did (the keys deleted, the routing tables published again) or, with
    `errors`, why it deleted nothing."""

    deleted: list[str] = field(default_factory=list)
    republished: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_target(text: str) -> str | None:
    """`Kind/name` with the kind spelt as in KINDS (any case); None when not of that form."""
    kind, sep, name = text.partition("/")
    if not sep or not kind or not name or "/" in name:
        return None
    canonical = {k.lower(): k for k in KINDS}.get(kind.lower(), kind)
    return record_key(canonical, name)


def referrers(
    resources: Sequence[Located], deleting: Collection[str], names: TopicNames | None = None
) -> dict[str, list[str]]:
    """Who still refers to what `deleting` removes: for every resource that stays and would
    not be valid without those keys, its problems. {} when the deletion is safe."""
    remaining = [item for item in resources if item.resource.key not in deleting]
    out: dict[str, list[str]] = {}
    for error in build(remaining, names=names).errors:
        out.setdefault(f"{error.kind}/{error.name}", []).append(error.message)
    return dict(sorted(out.items()))


def keys_of_files(paths: Sequence[Path]) -> tuple[list[str], list[ManifestError]]:
    """The `Kind/name` of every resource in the files (each must be a valid manifest)."""
    located, errors = parse_files(paths)
    return list(dict.fromkeys(item.resource.key for item in located)), errors


async def delete_keys(kafka: KafkaSettings, names: TopicNames, keys: Sequence[str]) -> DeleteReport:
    report = DeleteReport()
    manifests, screened = await read_screened(kafka, names)
    on_topic = set(manifests.versions) | manifests.rejected_keys
    wanted = list(dict.fromkeys(keys))
    for key in wanted:
        kind = key.partition("/")[0]
        if key in on_topic and kind != ROUTING_KIND:
            continue
        if kind == ROUTING_KIND:
            report.errors.append(f"{key}: routing tables go with their AgentSystem")
        elif kind not in KINDS and key not in on_topic:
            report.errors.append(
                f"{key}: unknown kind {kind!r}{suggest(kind, KINDS)} (kinds: {', '.join(KINDS)})"
            )
        else:
            report.errors.append(f"{key} is not applied (prefix {names.prefix!r})")
    if report.errors:
        return report
    deleting = set(wanted)
    for referrer, problems in referrers(screened.located(), deleting, names).items():
        report.errors.append(f"{referrer} still refers to it: {'; '.join(problems)}")
    if report.errors:
        return report
    result = build(screened.located(without=deleting), names=names)
    assert result.catalog is not None  # referrers() found no problem in this very set
    systems = {key.partition("/")[2] for key in wanted if key.startswith("AgentSystem/")}
    tables = [record_key(ROUTING_KIND, s) for s in sorted(systems)]
    tombstones = [*wanted, *(t for t in tables if t in manifests.versions)]
    records, _ = plan([], result.catalog, manifests.records, stale_keys(manifests, screened))
    await publish(kafka, names, records, tombstones)
    report.deleted = tombstones
    report.republished = {record_key(r.kind, r.name): r.generation for r in records}
    return report
