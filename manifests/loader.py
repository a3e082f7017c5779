"""Loading manifests: files, folders (`*.yaml`/`*.yml` directly inside, sorted) and
multi-document YAML, with the line of every problem.

`load_paths` parses, validates each resource, checks references and graphs, and builds a
`Catalog` when everything is valid. `catalog_from_resources` does the same for resources read
back from the manifests topic.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from manifests._pydantic_errors import located_errors
from manifests._yaml import DocumentError, line_of, read_documents
from manifests.errors import ManifestError, suggest
from manifests.models import KINDS, Resource
from manifests.validation import check
from podium.core.errors import PermanentError
from topics.names import TopicNames

if TYPE_CHECKING:
    from manifests.catalog import Catalog

MAX_FILE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Located:
    """A valid resource, its plain document (what is published) and where it came from."""

    resource: Resource
    raw: dict[str, Any]
    file: str
    line: int
    node: Any = None

    @property
    def source(self) -> str:
        return f"{self.file}:{self.line}"

    def error(self, path: Sequence[str | int], message: str) -> ManifestError:
        line = line_of(self.node, path, self.line) if self.node is not None else self.line
        return ManifestError(
            file=self.file,
            line=line,
            kind=self.resource.kind_name,
            name=self.resource.name,
            message=message,
        )


@dataclass(slots=True)
class LoadResult:
    catalog: Catalog | None
    errors: list[ManifestError] = field(default_factory=list)
    resources: list[Located] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class InvalidManifests(PermanentError):
    """The manifests do not form a valid, consistent set; `errors` lists every problem."""

    def __init__(self, errors: Sequence[ManifestError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = list(errors)


def parse_document(
    value: Any, *, file: str, line: int, node: Any = None
) -> Located | list[ManifestError]:
    """Validate one document against the model of its `kind`."""
    if not isinstance(value, dict):
        kind_of = type(value).__name__
        return [
            ManifestError(
                file,
                line,
                None,
                None,
                f"a manifest must be a mapping with apiVersion, kind, "
                f"metadata and spec; found a {_yaml_type(kind_of)}",
            )
        ]
    kind = value.get("kind")
    metadata = value.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    name = name if isinstance(name, str) and name else None
    if kind is None:
        return [
            ManifestError(file, line, None, name, f"missing `kind` (one of {', '.join(KINDS)})")
        ]
    if not isinstance(kind, str) or kind not in KINDS:
        where = line_of(node, ("kind",), line) if node is not None else line
        return [
            ManifestError(
                file,
                where,
                None,
                name,
                f"unknown kind {kind!r}{suggest(str(kind), KINDS)} (kinds: {', '.join(KINDS)})",
            )
        ]
    model = KINDS[kind]
    try:
        resource = model.model_validate(value)
    except ValidationError as exc:
        return located_errors(
            exc, model, file=file, doc_line=line, node=node, value=value, kind=kind, name=name
        )
    return Located(resource=resource, raw=value, file=file, line=line, node=node)  # type: ignore[arg-type]


def _yaml_type(python_type: str) -> str:
    return {"list": "list", "str": "string", "int": "number", "float": "number"}.get(
        python_type, python_type
    )


def parse_text(file: str, text: str) -> tuple[list[Located], list[ManifestError]]:
    located: list[Located] = []
    errors: list[ManifestError] = []
    for doc in read_documents(file, text):
        if isinstance(doc, DocumentError):
            errors.append(ManifestError(file, doc.line, None, None, doc.message))
            continue
        parsed = parse_document(doc.value, file=file, line=doc.line, node=doc.node)
        if isinstance(parsed, list):
            errors.extend(parsed)
        else:
            located.append(parsed)
    return located, errors


MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def _manifests_under(folder: Path) -> list[Path]:
    """The manifest files in `folder` and its subfolders (but `.git`), sorted, as Orloj's
    `apply -f FOLDER` walks them (its use cases keep their agents in `agents/`)."""
    found: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".git"]
        found.extend(Path(root, n) for n in names if Path(n).suffix.lower() in MANIFEST_SUFFIXES)
    return sorted(found)


def expand_paths(paths: Sequence[Path]) -> tuple[list[Path], list[ManifestError]]:
    files: list[Path] = []
    errors: list[ManifestError] = []
    for path in paths:
        if path.is_dir():
            inside = _manifests_under(path)
            if not inside:
                errors.append(
                    ManifestError(
                        str(path),
                        None,
                        None,
                        None,
                        "no *.yaml, *.yml or *.json files in this folder or below",
                    )
                )
            files.extend(inside)
        elif path.is_file():
            files.append(path)
        else:
            errors.append(ManifestError(str(path), None, None, None, "no such file or folder"))
    return list(dict.fromkeys(files)), errors


def load_paths(paths: Sequence[Path], names: TopicNames | None = None) -> LoadResult:
    """Load and validate files and folders; `.catalog` is None when there is any error."""
    located, errors = parse_files(paths)
    return build(located, errors, names)


def parse_files(paths: Sequence[Path]) -> tuple[list[Located], list[ManifestError]]:
    """Read and validate every resource on its own (no references checked yet)."""
    files, errors = expand_paths([Path(p) for p in paths])
    located: list[Located] = []
    for file in files:
        try:
            data = file.read_bytes()
        except OSError as exc:
            errors.append(
                ManifestError(str(file), None, None, None, f"cannot read: {exc.strerror}")
            )
            continue
        if len(data) > MAX_FILE_BYTES:
            errors.append(ManifestError(str(file), None, None, None, "file is larger than 10 MiB"))
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            errors.append(ManifestError(str(file), line, None, None, "not UTF-8 text"))
            continue
        found, problems = parse_text(str(file), text)
        located.extend(found)
        errors.extend(problems)
    return located, errors


def build(
    located: Sequence[Located],
    errors: Sequence[ManifestError] = (),
    names: TopicNames | None = None,
) -> LoadResult:
    """Check references and graphs across `located` and build the Catalog if all is valid."""
    from manifests.catalog import Catalog

    problems = list(errors)
    invalid = [(e.kind, e.name) for e in problems if e.kind and e.name]
    problems.extend(check(located, invalid))
    problems.sort(key=ManifestError.sort_key)
    if problems:
        return LoadResult(catalog=None, errors=problems, resources=list(located))
    catalog = Catalog.build([item.resource for item in located], names or TopicNames())
    return LoadResult(catalog=catalog, errors=[], resources=list(located))


def catalog_from_resources(
    resources: Iterable[Mapping[str, Any]],
    names: TopicNames | None = None,
    *,
    source: str = "<applied>",
) -> Catalog:
    """A Catalog from plain resources (as read back from the manifests topic).

    Raises `InvalidManifests` listing every problem when they are not a valid, consistent set.
    """
    located: list[Located] = []
    errors: list[ManifestError] = []
    for raw in resources:
        parsed = parse_document(dict(raw), file=source, line=0)
        if isinstance(parsed, list):
            errors.extend(parsed)
        else:
            located.append(parsed)
    result = build(located, errors, names)
    if result.catalog is None:
        raise InvalidManifests(result.errors)
    return result.catalog
