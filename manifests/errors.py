"""`ManifestError`: one problem in a manifest, located as `file:line: Kind/name: message`."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ManifestError:
    file: str
    line: int | None
    kind: str | None
    name: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        if self.kind and self.name:
            return f"{where}: {self.kind}/{self.name}: {self.message}"
        if self.kind:
            return f"{where}: {self.kind}: {self.message}"
        return f"{where}: {self.message}"

    def sort_key(self) -> tuple[str, int, str]:
        return (self.file, self.line or 0, self.message)


def suggest(word: str, candidates: Iterable[str]) -> str:
    """`; did you mean 'x'?` when a candidate is close to `word`, else an empty string."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
