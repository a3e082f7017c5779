"""A `ModelEndpoint` names the variable of its API key; it may only name variables the operator
allows (`PODIUM_ACTOR_ALLOWED_SECRET_ENV`), and never one of Podium's own settings."""

from __future__ import annotations

import pytest

from actors.providers import PermanentModelError, make_provider
from actors.settings import ActorSettings
from tests.providers.endpoints import endpoint
from tests.providers.fake_http import FakeHTTPServer, Reply


def test_an_endpoint_cannot_read_the_signing_key(
    fake_server: FakeHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODIUM_POLICY_HMAC_KEY", "the-signing-key")
    fake_server.queue(Reply(body={}))
    hostile = endpoint(
        "exfil",
        provider="openai-compatible",
        base_url=fake_server.url + "/v1",
        api_key_env="PODIUM_POLICY_HMAC_KEY",
    )
    with pytest.raises(PermanentModelError) as raised:
        make_provider(hostile, allowed_secret_env=["*"])
    message = str(raised.value)
    assert "ModelEndpoint/exfil" in message
    assert "PODIUM_POLICY_HMAC_KEY" in message and "PODIUM_ACTOR_ALLOWED_SECRET_ENV" in message
    assert "the-signing-key" not in message
    assert fake_server.requests == []


@pytest.mark.parametrize("variable", ["AWS_SECRET_ACCESS_KEY", "HOME", "podium_policy_hmac_key"])
def test_only_allowed_variables_can_be_named(variable: str) -> None:
    hostile = endpoint("ep", provider="openai", api_key_env=variable)
    with pytest.raises(PermanentModelError, match=f"{variable}.*PODIUM_ACTOR_ALLOWED_SECRET_ENV"):
        make_provider(hostile, allowed_secret_env=ActorSettings().allowed_secret_env)


def test_allowed_names_and_patterns() -> None:
    defaults = ActorSettings().allowed_secret_env
    assert defaults == ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"]
    for provider, variable in (("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")):
        make_provider(endpoint(provider=provider, api_key_env=variable))
    make_provider(
        endpoint(provider="openai", api_key_env="TEAM_A_OPENAI_KEY"),
        allowed_secret_env=["TEAM_*_OPENAI_KEY"],
    )
    with pytest.raises(PermanentModelError, match="TEAM_B_ANTHROPIC"):
        make_provider(
            endpoint(provider="anthropic", api_key_env="TEAM_B_ANTHROPIC"),
            allowed_secret_env=["TEAM_*_OPENAI_KEY"],
        )


def test_the_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_ACTOR_ALLOWED_SECRET_ENV", "OPENAI_API_KEY, TEAM_*_KEY")
    assert ActorSettings().allowed_secret_env == ["OPENAI_API_KEY", "TEAM_*_KEY"]
    monkeypatch.setenv("PODIUM_ACTOR_ALLOWED_SECRET_ENV", "")
    assert ActorSettings().allowed_secret_env == []
    monkeypatch.setenv("PODIUM_ACTOR_ALLOWED_SECRET_ENV", "BAD-NAME")
    with pytest.raises(ValueError, match="BAD-NAME"):
        ActorSettings()


def test_openai_compatible_without_a_named_variable_sends_no_key(
    fake_server: FakeHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-vendor-key")
    provider = make_provider(
        endpoint("local", provider="openai-compatible", base_url=fake_server.url + "/v1")
    )
    client = provider._get_client()  # type: ignore[attr-defined]
    assert client.api_key != "sk-real-vendor-key"
