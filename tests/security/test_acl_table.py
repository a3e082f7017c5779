"""The ACL table (`topics.acls`): each role gets what its clients use, and nothing it must not."""

from __future__ import annotations

import pytest

from topics.acls import ROLES, AclBinding, Role, acl_bindings, acl_table
from topics.names import TopicNames

NAMES = TopicNames("podium")


def _who(role: Role) -> str:
    return f"User:podium-{role}"


def _allows(role: Role, operation: str, resource_type: str, name: str) -> bool:
    """Whether `role` may do `operation` on the resource `name` (prefixed patterns match)."""
    implied = {"DESCRIBE": {"DESCRIBE", "READ", "WRITE"}}.get(operation, {operation})
    return any(
        b.resource_type == resource_type
        and b.operation in implied
        and (name == b.name if b.pattern_type == "LITERAL" else name.startswith(b.name))
        for b in acl_bindings(role, NAMES, _who(role))
    )


def _writers(topic: str) -> set[Role]:
    return {role for role in ROLES if _allows(role, "WRITE", "TOPIC", topic)}


def test_every_binding_is_under_the_prefix_and_names_its_principal() -> None:
    for role in ROLES:
        for binding in acl_bindings(role, NAMES, _who(role)):
            assert binding.principal == _who(role)
            assert binding.name.startswith("podium."), binding
    other = acl_bindings("actor", TopicNames("acme"), "User:x")
    assert all(b.name.startswith("acme.") for b in other)


def test_who_writes_each_topic() -> None:
    assert _writers(NAMES.manifests) == {"operator"}
    assert _writers(NAMES.replies("actor-1234")) == {"policy"}
    assert _writers(NAMES.tasks) == {"operator", "scheduler", "submitter", "ledger"}
    assert _writers(NAMES.policy_requests) == {"actor"}
    assert _writers(NAMES.policy_requests_dlq) == {"policy"}
    assert _writers(NAMES.ledger_anchors) == {"ledger"}
    # the deciders of approvals (ledger API, operator) write only the signed decision; the
    # policy service resumes the step
    assert _writers(NAMES.agent("writer")) == {"dispatcher", "actor", "policy"}
    assert _writers(NAMES.approvals) == {"actor", "policy", "ledger", "operator"}
    assert _writers(NAMES.events) == {"dispatcher", "actor", "policy"}
    # operators pause and throttle; the policy service records each control as an event
    assert _writers(NAMES.controls) == {"operator"}


def test_the_submitter_only_produces_tasks() -> None:
    written = {
        b.name
        for b in acl_bindings("submitter", NAMES, _who("submitter"))
        if b.operation == "WRITE"
    }
    assert written == {NAMES.tasks}
    assert not any(
        b.resource_type == "TRANSACTIONAL_ID"
        for b in acl_bindings("submitter", NAMES, _who("submitter"))
    )


def test_groups_and_transactional_ids_are_each_roles_own() -> None:
    assert _allows("actor", "READ", "GROUP", NAMES.actor_group("writer"))
    assert not _allows("actor", "READ", "GROUP", NAMES.policy_group)
    assert not _allows("ledger", "READ", "GROUP", NAMES.actor_group("writer"))
    assert _allows(
        "actor", "WRITE", "TRANSACTIONAL_ID", "podium.actor.writer.podium.agent.writer.0"
    )
    assert not _allows("actor", "WRITE", "TRANSACTIONAL_ID", "podium.manifests.apply")
    assert not _allows("actor", "WRITE", "TRANSACTIONAL_ID", "podium.approvals.decide.a1")
    assert _allows("operator", "WRITE", "TRANSACTIONAL_ID", "podium.manifests.apply")


def test_the_actor_reads_only_its_own_reply_topics() -> None:
    assert _allows("actor", "READ", "TOPIC", NAMES.replies("actor-1a2b3c4d"))
    assert not _allows("actor", "READ", "TOPIC", NAMES.replies("cli-1a2b"))
    assert not _allows("actor", "READ", "TOPIC", NAMES.policy_requests)


def test_a_bad_principal_or_role_is_refused() -> None:
    with pytest.raises(ValueError, match="User:<name>"):
        acl_bindings("actor", NAMES, "podium-actor")
    with pytest.raises(ValueError, match="unknown role"):
        acl_bindings("root", NAMES, "User:x")  # type: ignore[arg-type]


def test_the_table_is_the_union_of_the_roles() -> None:
    table = acl_table(NAMES, {role: _who(role) for role in ROLES})
    assert len(table) == len(set(table))
    assert all(isinstance(b, AclBinding) for b in table)
    assert len(table) == sum(len(acl_bindings(r, NAMES, _who(r))) for r in ROLES)
