"""The ACL table (`topics.acls`): each role gets what its clients use, and nothing it must not."""

from __future__ import annotations

import pytest

from topics.acls import ROLES, AclBinding, Role, acl_bindings, acl_table, agent_actor_bindings
from topics.names import TopicNames

NAMES = TopicNames("podium")


def _who(role: Role) -> str:
    return f"User:podium-{role}"


def _grants(bindings: list[AclBinding], operation: str, resource_type: str, name: str) -> bool:
    """Whether `bindings` allow `operation` on the resource `name` (prefixed patterns match)."""
    implied = {"DESCRIBE": {"DESCRIBE", "READ", "WRITE"}}.get(operation, {operation})
    return any(
        b.resource_type == resource_type
        and b.operation in implied
        and (name == b.name if b.pattern_type == "LITERAL" else name.startswith(b.name))
        for b in bindings
    )


def _allows(role: Role, operation: str, resource_type: str, name: str) -> bool:
    return _grants(acl_bindings(role, NAMES, _who(role)), operation, resource_type, name)


def _agent_allows(agent: str, operation: str, resource_type: str, name: str) -> bool:
    bindings = agent_actor_bindings(agent, NAMES, f"User:podium-actor-{agent}")
    return _grants(bindings, operation, resource_type, name)


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


# An actor serving one agent, as its own principal: `writer`'s and `writer-2`'s names share a head.
AGENTS = ("writer", "writer-2")


def _txn(agent: str, partition: int = 0) -> str:
    return f"{NAMES.actor_group(agent)}.{NAMES.agent(agent)}.{partition}"


def _replies(agent: str) -> str:
    return NAMES.replies(NAMES.actor_instance(agent, "1a2b3c4d"))


@pytest.mark.parametrize(("me", "other"), [AGENTS, tuple(reversed(AGENTS))])
def test_an_agents_principal_reads_only_its_own_inbox_group_ids_and_replies(
    me: str, other: str
) -> None:
    assert _agent_allows(me, "READ", "TOPIC", NAMES.agent(me))
    assert _agent_allows(me, "READ", "TOPIC", NAMES.agent_joins(me))
    assert _agent_allows(me, "READ", "GROUP", NAMES.actor_group(me))
    assert _agent_allows(me, "WRITE", "TRANSACTIONAL_ID", _txn(me, 11))
    assert _agent_allows(me, "READ", "TOPIC", _replies(me))
    assert not _agent_allows(me, "READ", "TOPIC", NAMES.agent(other))
    assert not _agent_allows(me, "READ", "TOPIC", NAMES.agent_joins(other))
    assert not _agent_allows(me, "READ", "GROUP", NAMES.actor_group(other))
    assert not _agent_allows(me, "WRITE", "TRANSACTIONAL_ID", _txn(other))
    assert not _agent_allows(me, "READ", "TOPIC", _replies(other))
    assert not _agent_allows(me, "READ", "TOPIC", NAMES.replies("actor-1a2b3c4d"))


def test_an_agents_principal_routes_to_any_inbox_and_writes_what_an_actor_writes() -> None:
    for topic in (NAMES.agent("analyst"), NAMES.agent_dlq("writer"), NAMES.policy_requests):
        assert _agent_allows("writer", "WRITE", "TOPIC", topic), topic
    for topic in (NAMES.events, NAMES.results, NAMES.approvals):
        assert _agent_allows("writer", "WRITE", "TOPIC", topic), topic
    for topic in (NAMES.manifests, NAMES.tasks, NAMES.controls, NAMES.replies("cli-1")):
        assert not _agent_allows("writer", "WRITE", "TOPIC", topic), topic
    assert not _agent_allows("writer", "READ", "TOPIC", NAMES.events)


def test_an_actor_instance_names_its_agent_unambiguously() -> None:
    assert NAMES.actor_instance(None, "1a2b3c4d") == "actor-1a2b3c4d"
    assert NAMES.actor_instance("writer", "1a2b3c4d") == "actor-6-writer-1a2b3c4d"
    longest = "a" * 201
    assert NAMES.is_reply_topic(NAMES.replies(NAMES.actor_instance(longest, "1a2b3c4d")))
    with pytest.raises(ValueError, match="cannot be used"):
        NAMES.actor_instance("bad/name", "1a2b3c4d")
