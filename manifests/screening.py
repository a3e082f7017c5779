"""`screen`: the valid, consistent set of what the manifests topic holds, whatever else it holds.

Every record read was valid on its own (`manifests._topic`); here references and graphs are
checked across the set. A resource with a problem falls back to its previous version when the
reader has one, else it is left out; that is repeated until the set is valid (leaving a resource
out can break one that refers to it, which is then left out in turn). Every version passed over
is a rejection with its problems as the reason. So one bad record never costs the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from manifests._topic import ROUTING_KIND, Rejection, Version
from manifests.catalog import Catalog
from manifests.errors import ManifestError
from manifests.loader import Located, build
from topics.names import TopicNames


@dataclass(frozen=True, slots=True)
class Screened:
    catalog: Catalog
    chosen: dict[str, Version]
    """The version of every key in `catalog` (and the newest of each routing table)."""
    rejected: list[Rejection] = field(default_factory=list)

    def located(self, *, without: set[str] | frozenset[str] = frozenset()) -> list[Located]:
        """The resources of the catalog as loaded (not the routing tables), less `without`."""
        return [
            v.located
            for key, v in sorted(self.chosen.items())
            if v.located is not None and key not in without
        ]


def screen(versions: Mapping[str, Sequence[Version]], names: TopicNames) -> Screened:
    """The newest versions that form a valid set, falling back or leaving out as above."""
    index = {
        key: len(vs) - 1
        for key, vs in versions.items()
        if vs and vs[-1].record.kind != ROUTING_KIND
    }
    reasons: dict[tuple[str, int], str] = {}
    while True:
        located = [_located(versions[key][i]) for key, i in sorted(index.items())]
        result = build(located, names=names)
        if result.catalog is not None:
            break
        problems = _by_key(result.errors, set(index))
        if not problems:  # every problem names its resource; never loop on one that does not
            problems = {key: result.errors for key in index}
        for key, errors in problems.items():
            reasons[(key, index[key])] = "; ".join(str(e) for e in errors)
            if index[key] > 0:
                index[key] -= 1
            else:
                del index[key]
    chosen = {key: versions[key][i] for key, i in index.items()}
    for key, vs in versions.items():
        if vs and vs[-1].record.kind == ROUTING_KIND:
            chosen[key] = vs[-1]
    rejected = [
        Rejection(versions[key][i].message, reason) for (key, i), reason in sorted(reasons.items())
    ]
    return Screened(catalog=result.catalog, chosen=chosen, rejected=rejected)


def _located(version: Version) -> Located:
    assert version.located is not None
    return version.located


def _by_key(errors: Sequence[ManifestError], keys: set[str]) -> dict[str, list[ManifestError]]:
    out: dict[str, list[ManifestError]] = {}
    for error in errors:
        key = f"{error.kind}/{error.name}"
        if key in keys:
            out.setdefault(key, []).append(error)
    return out
