"""`compose.yaml`: every role of SPEC.md, pinned images, healthchecks, the shared settings."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from podium.stack.compose_broker import role_password_variables

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_AGENTS = ("researcher", "analyst", "writer")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = YAML(typ="safe").load((ROOT / "compose.yaml").read_text())
    assert isinstance(compose, dict)
    found: dict[str, Any] = compose["services"]
    return found


def test_every_role_of_the_spec_has_a_service(services: dict[str, Any]) -> None:
    expected = {"kafka", "postgres", "dispatcher", "policy", "ledger"}
    expected |= {f"actor-{agent}" for agent in EXAMPLE_AGENTS}
    assert expected <= set(services), f"missing: {sorted(expected - set(services))}"


def test_images_are_pinned_and_infrastructure_has_healthchecks(services: dict[str, Any]) -> None:
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert re.fullmatch(r"postgres:15\.\d+", services["postgres"]["image"])
    for name in ("kafka", "postgres"):
        assert services[name]["healthcheck"]["test"], name


@pytest.mark.parametrize(
    ("service", "command"),
    [
        ("dispatcher", ["dispatcher"]),
        ("policy", ["policy"]),
        ("ledger", ["ledger"]),
        ("scheduler", ["scheduler"]),
        *[(f"actor-{a}", ["actor", a]) for a in EXAMPLE_AGENTS],
    ],
)
def test_role_services_run_podium_with_settings_and_wait_for_health(
    services: dict[str, Any], service: str, command: list[str]
) -> None:
    spec = services[service]
    assert spec["build"] == "."
    assert spec["command"] == command
    assert spec["deploy"]["replicas"] >= 1
    env = spec["environment"]
    assert env["PODIUM_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["PODIUM_DATABASE_URL"].startswith("postgresql://")
    if service == "policy":
        assert env["PODIUM_POLICY_SIGNING_KEY"].startswith("${PODIUM_POLICY_SIGNING_KEY:?")
        assert env["PODIUM_POLICY_APPROVER_KEYS"].startswith("${PODIUM_POLICY_APPROVER_KEYS:?")
    elif service == "ledger":
        assert env["PODIUM_APPROVER_SIGNING_KEY"].startswith("${PODIUM_APPROVER_SIGNING_KEY:?")
        assert "PODIUM_POLICY_SIGNING_KEY" not in env, "only the policy service holds its key"
    else:
        assert "PODIUM_APPROVER_SIGNING_KEY" not in env, "actors never hold an approver key"
        assert env["PODIUM_POLICY_VERIFY_KEYS"].startswith("${PODIUM_POLICY_VERIFY_KEYS:?")
        assert "PODIUM_POLICY_SIGNING_KEY" not in env, "only the policy service holds the key"
    assert spec["depends_on"]["postgres"]["condition"] == "service_healthy"
    # the ACLs are applied before any service connects
    assert spec["depends_on"]["kafka-acls"]["condition"] == "service_completed_successfully"
    # each role authenticates as its own principal, with a password that has no default
    role = "actor" if service.startswith("actor-") else service
    assert env["PODIUM_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert env["PODIUM_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["PODIUM_KAFKA_SASL_USERNAME"] == f"podium-{role}"
    variable = role_password_variables()[role]  # type: ignore[index]
    assert env["PODIUM_KAFKA_SASL_PASSWORD"].startswith("${" + variable + ":?")


def test_decision_keys_have_no_default() -> None:
    """A missing key stops `docker compose up` with the way to make one; none is made up."""
    text = (ROOT / "compose.yaml").read_text()
    assert not re.search(r"PODIUM_(POLICY|APPROVER)_\w*KEY\w*:-", text)
    assert "PODIUM_POLICY_HMAC_KEY" not in text


def test_dockerfile_builds_the_podium_image() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "pip install ." in dockerfile
    assert 'ENTRYPOINT ["podium"]' in dockerfile
    # every package the project installs is copied into the image before `pip install .`
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in (name.rstrip("*") for name in packages):
        assert f"COPY {package} ./{package}\n" in dockerfile, f"the image lacks {package}"


def test_only_the_actors_and_the_ledger_hold_the_sealing_key(services: dict[str, Any]) -> None:
    """The actors open endpoints' Secrets, the ledger webhooks'; the key has no default, and no
    other service gets it."""
    holders = {"actor-": "PODIUM_ACTOR_SEALING_KEY", "ledger": "PODIUM_LEDGER_SEALING_KEY"}
    for name, spec in services.items():
        env = spec.get("environment") or {}
        variable = next((v for prefix, v in holders.items() if name.startswith(prefix)), None)
        if variable is not None:
            assert env[variable].startswith("${PODIUM_ACTOR_SEALING_KEY:?"), name
            assert "python -m manifests.sealing" in env[variable]
        for other in set(holders.values()) - {variable}:
            assert other not in env, name


def test_kafka_runs_the_generated_sasl_broker_and_acls_are_applied_first(
    services: dict[str, Any],
) -> None:
    kafka = services["kafka"]
    assert kafka["entrypoint"] == ["/bin/bash", "/podium/kafka-start.sh"]
    assert "./deploy/kafka-start.sh:/podium/kafka-start.sh:ro" in kafka["volumes"]
    script = (ROOT / "deploy" / "kafka-start.sh").read_text()
    needed = set(re.findall(r"\(password (PODIUM_KAFKA_\w+_PASSWORD)\)", script))
    assert len(needed) == 9
    for variable in needed:
        assert kafka["environment"][variable].startswith("${" + variable + ":?"), variable
    assert "--command-config /tmp/podium-kafka/admin.properties" in kafka["healthcheck"]["test"][1]
    acls = services["kafka-acls"]
    assert acls["command"] == ["acls", "apply"]
    assert acls["environment"]["PODIUM_KAFKA_SASL_USERNAME"] == "podium-admin"
    assert acls["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "PLAINTEXT://" not in (ROOT / "compose.yaml").read_text()
