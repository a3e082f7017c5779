"""Orloj's `Tool.spec.auth` on http tools: the profiles, what each requires, and the Secret (and
keys) it names, refused at validation with the path and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from manifests.loader import load_paths
from manifests.models import Tool

HERE = Path(__file__).resolve().parent
TOOLS, SECRETS = HERE / "orloj_tools", HERE / "orloj_secrets"

TOOL = """\
apiVersion: orloj.dev/v1
kind: Tool
metadata: {name: t}
spec:
  type: http
  endpoint: http://127.0.0.1:9/t
  auth: %s
---
apiVersion: orloj.dev/v1
kind: Secret
metadata: {name: tokens}
spec:
  stringData: {api: x, value: y, client_id: c, client_secret: s}
---
apiVersion: orloj.dev/v1
kind: Secret
metadata: {name: plain}
spec:
  stringData: {value: y}
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    file = tmp_path / "m.yaml"
    file.write_text(text)
    return [str(e) for e in load_paths([file]).errors]


def test_orloj_tools_with_auth_validate() -> None:
    result = load_paths([TOOLS, SECRETS])
    assert [str(e) for e in result.errors] == []
    assert result.catalog is not None
    tools = result.catalog.tools
    keyed = tools["rr-real-http-auth-tool"].spec.auth
    assert keyed is not None and keyed.profile == "api_key_header"
    assert (keyed.header_name, keyed.secret_name, keyed.secret_keys) == (
        "X-Stub-Key",
        "tool-auth-key",
        ("value",),
    )
    bearer = tools["bearer-tool"]
    assert bearer.spec.auth is not None and bearer.spec.auth.profile == "bearer"
    assert result.catalog.secret_for_tool(bearer) is result.catalog.secrets["tool-auth-key"]
    oauth2 = tools["oauth2-tool"].spec.auth
    assert oauth2 is not None and oauth2.scopes == ["tools.read", "tools.write"]
    assert oauth2.secret_keys == ("client_id", "client_secret")


@pytest.mark.parametrize(
    "auth",
    [
        "{secretRef: tokens}",
        "{profile: Bearer, secretRef: 'tokens:api'}",
        "{profile: api_key_header, secretRef: team/tokens, headerName: X-API-Key}",
        "{profile: basic, secretRef: plain}",
        "{profile: oauth2_client_credentials, secretRef: tokens, tokenURL: 'https://idp/token'}",
    ],
)
def test_valid_auth(tmp_path: Path, auth: str) -> None:
    assert problems(tmp_path, TOOL % auth) == []


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        (
            "{profile: digest, secretRef: tokens}",
            "m.yaml:7: Tool/t: spec.auth.profile: 'digest' is not one of bearer, api_key_header,"
            " basic, oauth2_client_credentials",
        ),
        ("{profile: basic}", "missing required field 'spec.auth.secretRef'"),
        (
            "{profile: api_key_header, secretRef: tokens}",
            "`headerName` is required when auth.profile is api_key_header",
        ),
        (
            "{profile: api_key_header, secretRef: tokens, headerName: 'X Key'}",
            "headerName 'X Key' is not an HTTP header name",
        ),
        (
            "{secretRef: tokens, headerName: X-Key}",
            "`headerName` applies to auth.profile api_key_header only (not bearer)",
        ),
        (
            "{profile: oauth2_client_credentials, secretRef: tokens}",
            "`tokenURL: http(s)://...` is required when auth.profile is oauth2_client_credentials",
        ),
        (
            "{profile: oauth2_client_credentials, secretRef: 'tokens:api', tokenURL: 'http://i/t'}",
            "write `secretRef: <name>`, without `:key`",
        ),
        (
            "{secretRef: tokens, scopes: [a]}",
            "`tokenURL` and `scopes` apply to auth.profile oauth2_client_credentials only",
        ),
        (
            "{secretRef: tokenz}",
            "m.yaml:7: Tool/t: Secret 'tokenz' is not defined; did you mean 'tokens'?",
        ),
        ("{secretRef: 'tokens:apy'}", "Secret/tokens has no key 'apy' (it has api, client_id,"),
        (
            "{profile: oauth2_client_credentials, secretRef: plain, tokenURL: 'http://i/t'}",
            "Secret/plain has no key 'client_secret' (it has value)",
        ),
    ],
)
def test_bad_auth_is_refused(tmp_path: Path, auth: str, expected: str) -> None:
    found = problems(tmp_path, TOOL % auth)
    assert any(expected in p for p in found), found


def test_oauth2_names_both_missing_keys_and_an_absent_secret_once(tmp_path: Path) -> None:
    auth = "{profile: oauth2_client_credentials, secretRef: %s, tokenURL: 'http://i/t'}"
    found = problems(tmp_path, TOOL % (auth % "plain"))
    assert [p for p in found if "has no key" in p and "client_id" in p]
    assert [p for p in found if "has no key" in p and "client_secret" in p]
    absent = problems(tmp_path, TOOL % (auth % "nowhere"))
    assert len([p for p in absent if "Secret 'nowhere' is not defined" in p]) == 1, absent


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "{type: python, endpoint: 'm:f', auth: {secretRef: tokens}}",
            "`auth` applies to tools of type http, external, webhook-callback and grpc with an "
            "`endpoint` only (this one is python)",
        ),
        (
            "{auth: {secretRef: tokens}}",
            "`auth` applies to tools of type http, external, webhook-callback and grpc with an "
            "`endpoint`",
        ),
    ],
)
def test_auth_is_refused_where_nothing_would_send_it(
    tmp_path: Path, spec: str, expected: str
) -> None:
    text = f"apiVersion: orloj.dev/v1\nkind: Tool\nmetadata: {{name: read-url}}\nspec: {spec}\n"
    found = problems(tmp_path, text + "---\n" + TOOL.split("---\n", 1)[1])
    assert any(expected in p for p in found), found


def test_auth_round_trips_with_orloj_names() -> None:
    tool = Tool.model_validate(
        {
            "apiVersion": "orloj.dev/v1",
            "kind": "Tool",
            "metadata": {"name": "t"},
            "spec": {
                "endpoint": "http://h/t",
                "auth": {"profile": "api_key_header", "secretRef": "k", "headerName": "X-K"},
            },
        }
    )
    dumped = tool.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    assert dumped["spec"]["auth"] == {
        "profile": "api_key_header",
        "secretRef": "k",
        "headerName": "X-K",
    }
    assert Tool.model_validate(dumped) == tool
