"""Who may touch which topic, group and transactional id: the ACL table of every service role.

A plain function of the topic prefix (`acl_bindings`): no Kafka here. The local stack applies it
(`topics.acl_admin.create_acls`) for its principals; a production cluster applies the same
bindings for the principals its operators chose. The README publishes the table.

Every name is under the prefix (`<p>` below). Prefixed patterns (`<p>.agent.`, `<p>.actor.`)
cover the names made at run time: agent inboxes, reply topics, transactional ids per partition.
READ and WRITE imply DESCRIBE in Kafka; CREATE is granted where a service creates a topic it
owns when it is missing (`topics.kafka.ensure_topics`), which lets it create nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from topics.names import TopicNames

Role = Literal["dispatcher", "actor", "policy", "ledger", "scheduler", "operator", "submitter"]
ROLES: tuple[Role, ...] = (
    "dispatcher",
    "actor",
    "policy",
    "ledger",
    "scheduler",
    "operator",
    "submitter",
)
"""The service roles, each with a principal of its own. The `actor` principal may serve every
agent role (`podium dev`, a process serving several agents); an actor serving one agent may have
a principal of its own instead (`agent_actor_bindings`)."""


def role_user(role: Role) -> str:
    """The user name of a role's principal where the operator has not chosen another: the local
    stack's and compose.yaml's (`User:podium-<role>`)."""
    return f"podium-{role}"


def agent_user(agent: str) -> str:
    """The user name of the principal of the actors serving only `agent`: podium-actor-<agent>."""
    return f"podium-actor-{agent}"


ResourceType = Literal["TOPIC", "GROUP", "TRANSACTIONAL_ID"]
PatternType = Literal["LITERAL", "PREFIXED"]
Operation = Literal["READ", "WRITE", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS"]


@dataclass(frozen=True, slots=True, order=True)
class AclBinding:
    """ALLOW `operation` on a resource (exact name, or every name starting with it)."""

    principal: str
    resource_type: ResourceType
    pattern_type: PatternType
    name: str
    operation: Operation


@dataclass(frozen=True, slots=True)
class _Grant:
    resource_type: ResourceType
    name: str
    operations: tuple[Operation, ...]
    prefixed: bool = False


def _topic(name: str, *ops: Operation, prefixed: bool = False) -> _Grant:
    return _Grant("TOPIC", name, ops, prefixed)


def _group(name: str, *, prefixed: bool = False) -> _Grant:
    return _Grant("GROUP", name, ("READ",), prefixed)


def _transactions(name: str, *, prefixed: bool = True) -> _Grant:
    return _Grant("TRANSACTIONAL_ID", name, ("WRITE", "DESCRIBE"), prefixed)


def _catalog_reader(n: TopicNames) -> list[_Grant]:
    """The catalog watcher of every service follows (and creates when missing) the manifests,
    and dead-letters the records it skips."""
    return [_topic(n.manifests, "READ", "CREATE"), _topic(n.manifests_dlq, "WRITE", "CREATE")]


def _approver(n: TopicNames) -> list[_Grant]:
    """Deciding an approval: read the book, write the signed decision, in one transaction per
    approval (the policy service resumes the step)."""
    return [
        _topic(n.approvals, "READ", "WRITE", "CREATE"),
        _transactions(f"{n.approvals}.decide."),
    ]


def _grants(role: Role, n: TopicNames) -> list[_Grant]:
    p = n.prefix
    agents = f"{p}.agent."  # `<p>.agent.`: inboxes, their DLQs and join changelogs
    if role == "dispatcher":
        return [
            _topic(n.tasks, "READ", "CREATE", "DESCRIBE_CONFIGS"),
            _topic(n.tasks_dlq, "WRITE", "CREATE"),
            _topic(f"{p}.dispatcher.", "READ", "WRITE", "CREATE", prefixed=True),  # started tasks
            _topic(agents, "WRITE", prefixed=True),
            _topic(n.events, "WRITE"),
            _topic(n.results, "WRITE"),
            _group(n.dispatcher_group),
            _transactions(f"{n.dispatcher_group}."),
            *_catalog_reader(n),
        ]
    if role == "actor":
        return [
            _topic(agents, "READ", "WRITE", "DESCRIBE_CONFIGS", prefixed=True),
            _topic(n.policy_requests, "WRITE"),
            _topic(n.replies("actor-"), "READ", "CREATE", prefixed=True),
            _topic(n.events, "WRITE"),
            _topic(n.results, "WRITE"),
            _topic(n.approvals, "WRITE"),  # a step that needs a human decision parks here
            _group(n.actor_group(""), prefixed=True),
            _transactions(n.actor_group("")),
            *_catalog_reader(n),
        ]
    if role == "policy":
        return [
            _topic(n.policy_requests, "READ", "CREATE"),
            _topic(n.policy_requests_dlq, "WRITE", "CREATE"),
            _topic(n.replies(""), "WRITE", prefixed=True),
            _topic(n.events, "READ"),  # usage settles the budgets
            _group(n.policy_group),
            _group(f"{n.policy_group}.usage"),
            *_approver(n),  # expired approvals are decided (denied) by the policy service
            # a counted decision resumes its step: the event and the step, with the offset
            _group(f"{n.policy_group}.approvals"),
            _topic(f"{p}.agent.", "WRITE", "CREATE", prefixed=True),
            _topic(n.events, "WRITE", "CREATE"),
            _transactions(f"{n.approvals}.resume."),
            # operators' pauses and throttles: every replica follows them, one records each
            _topic(n.controls, "READ", "CREATE"),
            _group(f"{n.policy_group}.controls"),
            *_catalog_reader(n),
        ]
    if role == "ledger":
        return [
            _topic(n.events, "READ", "CREATE"),
            _topic(n.results, "READ", "CREATE"),
            _topic(n.events_dlq, "WRITE", "CREATE"),
            _topic(f"{n.results}.dlq", "WRITE", "CREATE"),
            _topic(n.ledger_anchors, "READ", "WRITE", "CREATE"),
            _group(n.ledger_group),
            *_approver(n),  # POST /v1/approvals/{id}/approve|deny
            _topic(n.tasks, "WRITE"),  # POST /v1/tasks
            *_catalog_reader(n),  # which systems are applied
        ]
    if role == "scheduler":
        return [
            _topic(n.tasks, "WRITE", "CREATE"),
            _topic(n.results, "READ", "CREATE"),
            _topic(f"{p}.scheduler.state", "READ", "WRITE", "CREATE"),
            _group(f"{p}.scheduler"),
            _transactions(f"{p}.scheduler."),
            *_catalog_reader(n),
        ]
    if role == "operator":
        return [
            # `podium apply` creates every topic of the systems it applies; operators read all
            # of them (DLQs, events, results) and the topics' configuration.
            _topic(f"{p}.", "READ", "CREATE", "DESCRIBE_CONFIGS", prefixed=True),
            _topic(n.manifests, "WRITE"),
            _transactions(f"{n.manifests}.apply", prefixed=False),
            _topic(n.tasks, "WRITE"),  # `podium run`
            *_approver(n),  # `podium approve|deny`
            _topic(n.controls, "WRITE"),  # `podium pause|resume|throttle`
        ]
    if role == "submitter":
        return [
            _topic(n.tasks, "WRITE"),
            _topic(n.results, "READ"),
            _group(f"{p}.submitter.", prefixed=True),
        ]
    raise ValueError(f"unknown role {role!r}; the roles are {', '.join(ROLES)}")


def _agent_actor_grants(agent: str, n: TopicNames) -> list[_Grant]:
    """An actor serving only `agent`: its own inbox, join changelog, group, transactional ids and
    reply topics, and nothing of another agent's but the right to route steps to it.

    Routing needs WRITE on every inbox (`<p>.agent.` prefixed, which also covers the other
    agents' DLQs and changelogs: Kafka has no suffix patterns). The transactional ids are
    `<group>.<inbox>.<partition>`; their prefix is this agent's alone unless another agent's name
    contains `.<p>.agent.`."""
    inbox, group = n.agent(agent), n.actor_group(agent)
    return [
        _topic(inbox, "READ", "WRITE", "DESCRIBE_CONFIGS"),
        _topic(n.agent_joins(agent), "READ", "WRITE"),
        _topic(f"{n.prefix}.agent.", "WRITE", prefixed=True),
        _topic(n.policy_requests, "WRITE"),
        _topic(n.replies(n.actor_replies_head(agent)), "READ", "CREATE", prefixed=True),
        _topic(n.events, "WRITE"),
        _topic(n.results, "WRITE"),
        _topic(n.approvals, "WRITE"),  # a step that needs a human decision parks here
        _group(group),
        _transactions(f"{group}.{inbox}."),
        *_catalog_reader(n),
    ]


def _bindings(principal: str, grants: list[_Grant]) -> list[AclBinding]:
    if not principal.startswith("User:"):
        raise ValueError(f"principal {principal!r} must be of the form User:<name>")
    bindings = {
        AclBinding(
            principal=principal,
            resource_type=grant.resource_type,
            pattern_type="PREFIXED" if grant.prefixed else "LITERAL",
            name=grant.name,
            operation=operation,
        )
        for grant in grants
        for operation in grant.operations
    }
    return sorted(bindings)


def acl_bindings(role: Role, names: TopicNames, principal: str) -> list[AclBinding]:
    """The ALLOW bindings of `role`'s principal (`User:<name>`) under `names.prefix`, sorted."""
    return _bindings(principal, _grants(role, names))


def agent_actor_bindings(agent: str, names: TopicNames, principal: str) -> list[AclBinding]:
    """The ALLOW bindings of the principal of the actors serving only `agent`, sorted."""
    return _bindings(principal, _agent_actor_grants(agent, names))


def acl_table(names: TopicNames, principals: dict[Role, str]) -> list[AclBinding]:
    """The bindings of every role in `principals` (role -> `User:<name>`)."""
    return [b for role, who in principals.items() for b in acl_bindings(role, names, who)]
