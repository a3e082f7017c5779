"""Random YAML never gets anything but clean validation errors (no exception escapes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from manifests.errors import ManifestError
from manifests.loader import build, parse_text
from manifests.models import KINDS

KEYS = [
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "spec",
    "labels",
    "model",
    "endpoint",
    "model_ref",
    "tools",
    "limits",
    "max_steps",
    "timeout",
    "agents",
    "graph",
    "next",
    "edges",
    "to",
    "when",
    "fan_out",
    "join",
    "delegates_to",
    "exit_when",
    "max_iterations",
    "provider",
    "options",
    "rules",
    "scope",
    "system",
    "target_systems",
    "transport",
    "env",
    "secretRef",
    "type",
    "runtime",
    "retry",
    "pricing",
    "none",
    "x",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([*KINDS, "orloj.dev/v1", "openai", "mock", "none", "60s", "a", "b", ""]),
    st.text(max_size=12),
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    ),
    max_leaves=30,
)
documents = st.fixed_dictionaries(
    {"apiVersion": st.sampled_from(["orloj.dev/v1", "v2"]), "kind": st.sampled_from([*KINDS, "X"])},
    optional={"metadata": values, "spec": values},
)


def _check(text: str) -> None:
    located, errors = parse_text("random.yaml", text)
    result = build(located, errors)
    assert (result.catalog is None) == bool(result.errors)
    for error in result.errors:
        assert isinstance(error, ManifestError)
        assert str(error).startswith("random.yaml")


def _dump(docs: list[Any]) -> str:
    from io import StringIO

    buffer = StringIO()
    YAML().dump_all(docs, buffer)
    return buffer.getvalue()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from([*"ab:-[]{}&*!|>'\"#%@`\n\t ,?0.", "\x00", "é"])))
def test_random_text(text: str) -> None:
    _check(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(documents, min_size=1, max_size=3))
def test_random_documents(docs: list[Any]) -> None:
    _check(_dump(docs))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values, min_size=1, max_size=3))
def test_random_values(docs: list[Any]) -> None:
    _check(_dump(docs))


EXAMPLE_SETS: list[list[Any]] = [
    [
        doc
        for path in sorted(folder.glob("*.yaml"))
        for doc in YAML(typ="safe").load_all(path.read_text())
    ]
    for folder in sorted((Path(__file__).resolve().parents[2] / "manifests" / "examples").iterdir())
    if folder.is_dir()
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (_replace(v, rest, new) if k == head else v) for k, v in value.items()}
    return [(_replace(v, rest, new) if i == head else v) for i, v in enumerate(value)]


@st.composite
def mutated_examples(draw: st.DrawFn) -> list[Any]:
    docs = list(draw(st.sampled_from(EXAMPLE_SETS)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        index = draw(st.integers(min_value=0, max_value=len(docs) - 1))
        path = draw(st.sampled_from(_paths(docs[index])))
        docs[index] = _replace(docs[index], path, draw(values))
    return docs


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_examples())
def test_mutated_examples(docs: list[Any]) -> None:
    _check(_dump(docs))


def test_alias_bomb_and_recursion(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 8):
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join(['*' + chr(96 + i)] * 10)}]\n"
    _, errors = parse_text("bomb.yaml", bomb)
    assert any("more than" in e.message for e in errors)
    _, errors = parse_text("deep.yaml", "[" * 5000 + "]" * 5000)
    assert errors
