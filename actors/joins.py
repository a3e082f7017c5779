"""The join store: branches of a fan-out wait here until the last one arrives.

Every branch of a task lands on the same partition of the join agent's inbox (keyed by task_id).
The waiting branches live in the partition's keyed state (`PartitionContext.state`, key = join
id, value = the arrived steps by branch), which `TransactionalProcessor` writes to the compacted
changelog `podium.agent.<agent>.joins` in the same transaction as the input offset and restores
on assignment; so the waiting state survives the crash of its replica. When the last branch
arrives, the merged step runs once and the key is deleted (a tombstone).

When a branch fails, the task fails, and its transaction also sends a notice (a `Step` with
`abandoned` set, `actors.transition.abandoned_notices`) to every join on the failed step's join
stack. A notice counts as that branch's
arrival: once every branch is accounted for, the key is deleted and the join does not run. So a
failed task leaves no waiting state behind, and a late branch never runs the join.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import msgspec

from actors.routing import join_key, merged_step
from topics.messages import Step
from topics.routing import RouteNode

log = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(dict[str, Step])


class JoinStore:
    """Counts join arrivals in a partition's keyed state (no Kafka here: the actor passes the
    state and collects the changes for its transaction)."""

    def arrive(
        self,
        state: Mapping[str, bytes],
        changes: dict[str, bytes | None],
        node: RouteNode,
        step: Step,
    ) -> Step | None:
        """Record `step`'s arrival, reading the partition's keyed `state` and writing to
        `changes` (None deletes a key); return the merged step when every branch is in."""
        key = join_key(node, step)
        state_key = f"join:{step.task_id}:{key.join_id}"
        raw = state.get(state_key)
        arrived: dict[str, Step] = {}
        if raw is not None:
            try:
                arrived = _decoder.decode(raw)
            except msgspec.DecodeError as exc:
                log.error("join state %s is unreadable (%s); starting it again", state_key, exc)
        if key.branch in arrived:
            log.warning(
                "join %s: branch %s arrived twice; keeping the first", state_key, key.branch
            )
        else:
            arrived[key.branch] = step
        if len(arrived) < key.branches:
            changes[state_key] = _encoder.encode(arrived)
            return None
        changes[state_key] = None
        failed = sorted(b for b, s in arrived.items() if s.abandoned is not None)
        if failed:
            log.info(
                "join %s: every branch is in, but %s failed; the join does not run",
                state_key,
                ", ".join(failed),
            )
            return None
        return merged_step(node, key, list(arrived.values()))
