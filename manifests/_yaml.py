"""Reading YAML with positions: multi-document files, line numbers of keys and items.

ruamel's round-trip loader keeps the position of every key and sequence item; `line_of` finds the
line of a path such as `("spec", "tools", 1)`. `plain` turns a document into JSON-able builtins
(what is validated, digested and published).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

MAX_NODES = 100_000
"""A document with more values than this (an alias bomb) is rejected."""


class DocumentError(ValueError):
    """The YAML cannot be read; `line` is 1-based, or None when unknown."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document of a file: its node (with positions) and its plain value."""

    file: str
    line: int
    node: Any
    value: Any


def read_documents(file: str, text: str) -> Iterator[Document | DocumentError]:
    """Yield every document of `text`, or a `DocumentError` where reading stops."""
    yaml = YAML(typ="rt")
    try:
        stream = yaml.load_all(text)
        while True:
            try:
                node = next(stream)
            except StopIteration:
                return
            if node is None:
                continue
            line = _start_line(node)
            try:
                value = plain(node)
            except DocumentError as exc:
                yield DocumentError(exc.message, exc.line or line)
                continue
            yield Document(file=file, line=line, node=node, value=value)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        mark_line: int | None = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        yield DocumentError(f"invalid YAML: {problem}", mark_line)
    except YAMLError as exc:
        position = getattr(exc, "position", None)
        at = text[:position].count("\n") + 1 if isinstance(position, int) else None
        yield DocumentError(f"invalid YAML: {_one_line(str(exc))}", at)
    except RecursionError:
        yield DocumentError("invalid YAML: the document is nested too deeply", None)
    except TypeError as exc:  # ruamel.yaml checks a key like `? {a: b}` by hashing it
        yield DocumentError(f"invalid YAML: a mapping key must be a plain value ({exc})", None)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _start_line(node: Any) -> int:
    lc = getattr(node, "lc", None)
    line = getattr(lc, "line", None)
    return line + 1 if isinstance(line, int) else 1


def plain(node: Any) -> Any:
    """JSON-able builtins of a node (str keys; dates as ISO strings); rejects alias bombs."""
    budget = [MAX_NODES]
    return _plain(node, budget, set())


def _plain(node: Any, budget: list[int], active: set[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise DocumentError(f"the document has more than {MAX_NODES} values", None)
    if isinstance(node, dict | list | set):
        if id(node) in active:
            raise DocumentError("a YAML alias refers to itself", None)
        active.add(id(node))
        try:
            if isinstance(node, dict):
                return {_key(k): _plain(v, budget, active) for k, v in node.items()}
            if isinstance(node, set):
                return sorted(_key(k) for k in node)
            return [_plain(v, budget, active) for v in node]
        finally:
            active.discard(id(node))
    if isinstance(node, ScalarBoolean):
        return bool(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, dt.datetime | dt.date):
        return node.isoformat()
    if isinstance(node, TaggedScalar):
        return str(node.value)
    if isinstance(node, bytes):
        return base64.b64encode(node).decode()
    if isinstance(node, tuple):
        return [_plain(v, budget, active) for v in node]
    return str(node)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return str(key)
    if isinstance(key, bool) or key is None:
        return str(key).lower() if key is not None else "null"
    return str(key)


def line_of(node: Any, path: Sequence[str | int], default: int) -> int:
    """The 1-based line of the deepest part of `path` found in `node`; `default` if none."""
    line = default
    current = node
    for part in path:
        if isinstance(current, CommentedMap):
            key = _find_key(current, part)
            if key is _MISSING:
                break
            position = current.lc.key(key)
            if position is not None:
                line = position[0] + 1
            current = current[key]
        elif isinstance(current, CommentedSeq) and isinstance(part, int):
            if not 0 <= part < len(current):
                break
            position = current.lc.item(part)
            if position is not None:
                line = position[0] + 1
            current = current[part]
        else:
            break
    return line


_MISSING = object()


def _find_key(mapping: CommentedMap, part: str | int) -> Any:
    if part in mapping:
        return part
    for key in mapping:
        if _key(key) == str(part):
            return key
    return _MISSING
