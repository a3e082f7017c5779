"""The `Secret` kind in Orloj's format (`stringData`, `data`), `auth.secretRef` on ModelEndpoint,
and what validation says about them (never the values)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from typer.testing import CliRunner

from manifests.loader import load_paths, parse_text
from manifests.models import KINDS, ModelEndpoint, Secret, parse_secret_ref
from podium.cli import app

ORLOJ = Path(__file__).resolve().parent / "orloj_secrets"
HIDDEN = "sk-do-not-print-7f3a9c"


def secret(spec: object, name: str = "k") -> Secret:
    return Secret.model_validate(
        {"apiVersion": "orloj.dev/v1", "kind": "Secret", "metadata": {"name": name}, "spec": spec}
    )


def problems(tmp_path: Path, text: str) -> list[str]:
    file = tmp_path / "m.yaml"
    file.write_text(text)
    return [str(e) for e in load_paths([file]).errors]


def test_secret_is_a_kind() -> None:
    assert KINDS["Secret"] is Secret


def test_orloj_secret_examples_validate() -> None:
    result = load_paths([ORLOJ])
    assert [str(e) for e in result.errors] == []
    assert result.catalog is not None
    assert sorted(result.catalog.secrets) == [
        "anthropic-api-key",
        "openai-api-key",
        "search-api-key",
        "tool-auth-key",
        "webhook-hmac-secret",
    ]
    endpoint = result.catalog.endpoints["anthropic-default"]
    assert result.catalog.secret_for(endpoint) is result.catalog.secrets["anthropic-api-key"]
    assert result.catalog.secrets["search-api-key"].spec.plain_values() == {
        "value": b"fixture-search-token"
    }


def test_podium_validate_accepts_them() -> None:
    result = CliRunner().invoke(app, ["validate", "-f", str(ORLOJ)])
    assert result.exit_code == 0, result.output
    assert "2 ModelEndpoint, 5 Secret" in result.stdout


def test_string_data_is_merged_over_data() -> None:
    merged = secret(
        {
            "data": {"value": base64.b64encode(b"old").decode(), "user": "YWxpY2U="},
            "stringData": {"value": "new"},
        }
    )
    assert merged.spec.plain_values() == {"user": b"alice", "value": b"new"}
    assert merged.spec.keys() == ["user", "value"]
    assert not merged.spec.sealed


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("data: {value: '!!nope'}", "spec.data.value: is not valid base64"),
        ("data: {value: ''}", "spec.data.value: is empty"),
        ("data: {value: '   '}", "spec.data.value: is empty"),
        ("stringData: {value: ''}", "spec.stringData.value: is empty"),
        ("stringData: {pin: 1234}", "spec.stringData.pin: must be a string (found int)"),
        ("stringData: {'a b': x}", "'a b' is not a Secret key"),
        ("{}", "spec: a Secret needs at least one value"),
        ("stringData: {value: x}\n  sealedData: {value: x}", "is not a value sealed by"),
        ("strinData: {value: x}", "unknown field 'strinData' in spec; did you mean 'stringData'"),
    ],
)
def test_invalid_secrets_are_refused_clearly(tmp_path: Path, spec: str, expected: str) -> None:
    text = f"apiVersion: orloj.dev/v1\nkind: Secret\nmetadata: {{name: k}}\nspec:\n  {spec}\n"
    found = problems(tmp_path, text)
    assert any(expected in p for p in found), found
    assert all(p.startswith(f"{tmp_path / 'm.yaml'}:") and "Secret/k" in p for p in found)


def test_a_sealed_value_cannot_be_mixed_with_plain_ones() -> None:
    sealed = "sealed:v1:" + "0" * 16 + ":" + "A" * 80
    with pytest.raises(ValueError, match="sealedData cannot be combined"):
        secret({"stringData": {"value": "x"}, "sealedData": {"other": sealed}})
    assert secret({"sealedData": {"value": sealed}}).spec.sealed


def test_errors_never_show_the_value(tmp_path: Path) -> None:
    for spec in (
        f"data: {{value: '{HIDDEN}!'}}",
        f"stringData: {{value: {HIDDEN}}}\n  data: {{value: '{HIDDEN}'}}",
        f"sealedData: {{value: '{HIDDEN}'}}",
        f"stringData: {{value: [{HIDDEN}]}}",
    ):
        text = f"apiVersion: orloj.dev/v1\nkind: Secret\nmetadata: {{name: k}}\nspec:\n  {spec}\n"
        found = problems(tmp_path, text)
        assert found and not any(HIDDEN in p for p in found), found


def test_secret_refs() -> None:
    assert parse_secret_ref("openai-api-key") == (None, "openai-api-key", "value")
    assert parse_secret_ref("team-a/openai-api-key") == ("team-a", "openai-api-key", "value")
    assert parse_secret_ref("tokens:api") == (None, "tokens", "api")
    for bad in ("", "a/b/c", "-x", "name:", "a b"):
        with pytest.raises(ValueError, match="is not a secret reference"):
            parse_secret_ref(bad)


ENDPOINT = """\
apiVersion: orloj.dev/v1
kind: ModelEndpoint
metadata: {name: e}
spec:
  provider: openai
  default_model: gpt-4o-mini
"""
TOKENS = """\
---
apiVersion: orloj.dev/v1
kind: Secret
metadata: {name: tokens}
spec:
  stringData: {api: x, value: y}
"""


def test_secret_ref_on_an_endpoint(tmp_path: Path) -> None:
    for spelling in ("secretRef", "secret_ref"):
        assert problems(tmp_path, ENDPOINT + f"  auth: {{{spelling}: tokens:api}}\n" + TOKENS) == []
    located, _ = parse_text("m.yaml", ENDPOINT + "  auth: {secretRef: team/tokens:api}\n")
    endpoint = located[0].resource
    assert isinstance(endpoint, ModelEndpoint) and endpoint.spec.auth is not None
    assert (endpoint.spec.auth.secret_name, endpoint.spec.auth.secret_key) == ("tokens", "api")


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (
            "auth: {secretRef: tokenz}",
            "m.yaml:7: ModelEndpoint/e: Secret 'tokenz' is not defined; did",
        ),
        ("auth: {secretRef: 'tokens:apy'}", "Secret/tokens has no key 'apy' (it has api, value)"),
        ("auth: {}", "missing required field 'spec.auth.secretRef'"),
        (
            "api_key_env: OPENAI_API_KEY\n  auth: {secretRef: tokens}",
            "set `api_key_env` or `auth.secretRef`, not both",
        ),
    ],
)
def test_bad_secret_refs_are_refused(tmp_path: Path, auth: str, expected: str) -> None:
    found = problems(tmp_path, ENDPOINT + f"  {auth}\n" + TOKENS)
    assert any(expected in p for p in found), found


WEBHOOK = """\
apiVersion: orloj.dev/v1
kind: Task
metadata: {name: t}
spec: {mode: template, system: s}
---
apiVersion: orloj.dev/v1
kind: AgentSystem
metadata: {name: s}
spec: {agents: [a]}
---
apiVersion: orloj.dev/v1
kind: Agent
metadata: {name: a}
spec: {model_ref: e}
---
apiVersion: orloj.dev/v1
kind: TaskWebhook
metadata: {name: hook}
spec:
  task_ref: t
  auth: {profile: generic, secret_ref: %s}
"""


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("tokens", None),
        ("tokens:api", None),
        ("tokenz", "TaskWebhook/hook: Secret 'tokenz' is not defined; did you mean 'tokens'?"),
        ("'tokens:apy'", "Secret/tokens has no key 'apy' (it has api, value)"),
    ],
)
def test_a_webhooks_secret_ref_names_an_applied_secret_and_key(
    tmp_path: Path, ref: str, expected: str | None
) -> None:
    found = problems(tmp_path, ENDPOINT + "---\n" + WEBHOOK % ref + TOKENS)
    if expected is None:
        assert found == []
    else:
        assert any(expected in p for p in found), found
