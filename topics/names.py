"""Topic and consumer-group names: the public contract of SPEC.md, under a configurable prefix."""

from __future__ import annotations

import re
from dataclasses import dataclass

_AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_REQUESTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,230}$")
"""A requester's instance name (in its reply topic): an agent's name fits in it with room for
the length and the instance (`actor_instance`)."""


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Every topic and group name Podium uses, derived from one prefix (default `podium`)."""

    prefix: str = "podium"

    @property
    def tasks(self) -> str:
        """`TaskRequested` from any service; read by the dispatcher."""
        return f"{self.prefix}.tasks"

    @property
    def tasks_dlq(self) -> str:
        return f"{self.prefix}.tasks.dlq"

    def agent(self, agent: str) -> str:
        """The inbox of an agent role: `Step` messages."""
        if not _AGENT_NAME.match(agent):
            raise ValueError(f"agent name {agent!r} cannot be used in a topic name")
        return f"{self.prefix}.agent.{agent}"

    def agent_dlq(self, agent: str) -> str:
        return f"{self.agent(agent)}.dlq"

    def agent_joins(self, agent: str) -> str:
        """Compacted changelog of the join state of an agent role, partitioned like its inbox."""
        return f"{self.agent(agent)}.joins"

    @property
    def policy_requests(self) -> str:
        return f"{self.prefix}.policy.requests"

    @property
    def policy_requests_dlq(self) -> str:
        return f"{self.prefix}.policy.requests.dlq"

    def replies(self, requester: str) -> str:
        """The reply topic of one requester instance (request-reply)."""
        return f"{self.prefix}.replies.{requester}"

    def is_reply_topic(self, topic: str) -> bool:
        """True for a name `replies()` can make under this prefix, and nothing else."""
        head = self.replies("")
        return topic.startswith(head) and bool(_REQUESTER.match(topic[len(head) :]))

    @staticmethod
    def actor_instance(agent: str | None, instance: str) -> str:
        """The requester name of an actor process: `actor-<instance>` when it serves several
        agents, `actor-<len>-<agent>-<instance>` when it serves one. The length makes the name's
        head (`actor_replies_head`) a prefix of that agent's names only: `actor-6-writer-` is not
        a prefix of agent `writer-2`'s `actor-8-writer-2-...`, so a prefixed ACL on it grants one
        agent's reply topics and nothing of another's."""
        if agent is None:
            return f"actor-{instance}"
        return f"{TopicNames.actor_replies_head(agent)}{instance}"

    @staticmethod
    def actor_replies_head(agent: str) -> str:
        """What every requester name of an actor serving only `agent` starts with."""
        if not _AGENT_NAME.match(agent):
            raise ValueError(f"agent name {agent!r} cannot be used in a topic name")
        return f"actor-{len(agent)}-{agent}-"

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def events_dlq(self) -> str:
        return f"{self.prefix}.events.dlq"

    @property
    def results(self) -> str:
        return f"{self.prefix}.results"

    @property
    def manifests(self) -> str:
        """Compacted: the applied manifests and compiled routing tables."""
        return f"{self.prefix}.manifests"

    @property
    def manifests_dlq(self) -> str:
        """Compacted: the manifests records a reader skipped, keyed by their position."""
        return f"{self.manifests}.dlq"

    @property
    def ledger_anchors(self) -> str:
        """Compacted: the ledger's signed chain heads (`LedgerAnchor`)."""
        return f"{self.prefix}.ledger.anchors"

    @property
    def approvals(self) -> str:
        return f"{self.prefix}.approvals"

    @property
    def controls(self) -> str:
        """Compacted: operators' pauses and throttles (`Control`), keyed by target."""
        return f"{self.prefix}.controls"

    # Consumer groups.

    def actor_group(self, agent: str) -> str:
        return f"{self.prefix}.actor.{agent}"

    @property
    def dispatcher_group(self) -> str:
        return f"{self.prefix}.dispatcher"

    @property
    def policy_group(self) -> str:
        return f"{self.prefix}.policy"

    @property
    def ledger_group(self) -> str:
        return f"{self.prefix}.ledger"

    def core_topics(self) -> list[str]:
        """The topics every deployment has, whatever systems are applied."""
        return [
            self.tasks,
            self.tasks_dlq,
            self.policy_requests,
            self.policy_requests_dlq,
            self.events,
            self.events_dlq,
            self.results,
            self.approvals,
        ]
