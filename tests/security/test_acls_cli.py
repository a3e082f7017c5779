"""`podium acls show`: the ACL table as an operator prints it for a cluster of their own."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from podium.cli import app
from topics.acls import acl_bindings, agent_actor_bindings
from topics.names import TopicNames


def _show(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, ["acls", "show", *args])
    return done.exit_code, done.output


def test_show_prints_a_roles_and_an_agents_bindings_under_a_prefix() -> None:
    code, out = _show("ledger", "agent/writer", "--prefix", "acme", "-o", "json")
    assert code == 0, out
    keys = ("principal", "resource", "pattern", "name", "operation")
    shown = {tuple(b[k] for k in keys) for b in json.loads(out)}
    names = TopicNames("acme")
    expected = [
        *acl_bindings("ledger", names, "User:podium-ledger"),
        *agent_actor_bindings("writer", names, "User:podium-actor-writer"),
    ]
    assert shown == {
        (b.principal, b.resource_type, b.pattern_type, b.name, b.operation) for b in expected
    }


def test_show_names_the_principal_of_one_target_and_refuses_unknown_targets() -> None:
    code, out = _show("submitter", "--principal", "User:orders-svc", "-o", "json")
    assert code == 0 and {b["principal"] for b in json.loads(out)} == {"User:orders-svc"}
    code, out = _show("root")
    assert code == 2 and "unknown target 'root'" in out
    code, out = _show("ledger", "actor", "--principal", "User:x")
    assert code == 2 and "exactly one" in out
