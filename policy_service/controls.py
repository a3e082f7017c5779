"""Operators' controls as the policy service holds them: plain data, no Kafka (unit-tested alone).

`ControlBook` is the table of `podium.controls` (latest `Control` per target) that every replica
follows (`control_follower.py`). For one request, `check` looks up the targets the call falls under
(`system/S`, `agent/A`, and `tool/T` for a tool call) and returns a `ControlCheck`, which
`decision.decide` turns into a deny with rule `control` (`control_refusal`):

- a paused target denies every new call under it;
- a throttled target admits `per_minute` calls per minute **per replica**: each replica keeps a
  token bucket per throttled target, holding at most `per_minute` tokens and refilled at
  `per_minute / 60` per second (a new throttle starts full). With N replicas the target sees at
  most N x `per_minute` calls a minute (each replica decides a share of the requests, by
  partition). A call takes a token when it is checked; the caller gives it back (`refund`) when
  the decision is not an allow, so only allowed calls count against the rate.

A target's latest record replaces its previous one (a throttle lifts a pause, and `resumed` or a
tombstone lifts both); a new record starts a new bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

from topics.messages import Action, AuthorizationRequest, Control

CONTROL_RULE = "control"
"""The rule a decision names when a control denied it."""


@dataclass(slots=True)
class TokenBucket:
    """`per_minute` tokens at most, refilled continuously; times are monotonic seconds."""

    per_minute: int
    tokens: float
    at: float

    @classmethod
    def full(cls, per_minute: int, now: float) -> TokenBucket:
        return cls(per_minute, float(per_minute), now)

    def take(self, now: float) -> bool:
        """Take one token if there is one (after refilling up to `now`)."""
        elapsed = max(0.0, now - self.at)
        self.tokens = min(float(self.per_minute), self.tokens + elapsed * self.per_minute / 60.0)
        self.at = max(self.at, now)
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def give_back(self) -> None:
        self.tokens = min(float(self.per_minute), self.tokens + 1.0)


@dataclass(frozen=True, slots=True)
class ControlEntry:
    """A target's control, and where it was read (its position on the topic)."""

    control: Control
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class ControlCheck:
    """What the controls say about one call: the paused targets it falls under, the throttled
    ones whose rate it is over, and the buckets it took a token from."""

    paused: tuple[Control, ...] = ()
    over_rate: tuple[Control, ...] = ()
    taken: tuple[str, ...] = ()


NO_CONTROLS = ControlCheck()


def targets_of(request: AuthorizationRequest) -> list[str]:
    """The targets a call falls under, widest first."""
    targets = [f"system/{request.system}", f"agent/{request.agent}"]
    if request.action == Action.TOOL_CALL and request.tool:
        targets.append(f"tool/{request.tool}")
    return targets


class ControlBook:
    """The latest control of every target, and the token buckets of the throttled ones."""

    def __init__(self) -> None:
        self._entries: dict[str, ControlEntry] = {}
        self._buckets: dict[str, TokenBucket] = {}

    def apply(self, target: str, control: Control | None, partition: int, offset: int) -> None:
        """Fold one record of the topic: `None` (a tombstone) or `resumed` lifts the target's
        control; any new record resets its bucket."""
        self._buckets.pop(target, None)
        if control is None or control.state == "resumed":
            self._entries.pop(target, None)
            return
        self._entries[target] = ControlEntry(control, partition, offset)

    def get(self, target: str) -> Control | None:
        entry = self._entries.get(target)
        return entry.control if entry else None

    def listing(self) -> list[ControlEntry]:
        """The targets under a control (paused or throttled), by target."""
        return [self._entries[t] for t in sorted(self._entries)]

    def check(self, request: AuthorizationRequest, now: float) -> ControlCheck:
        """The controls over `request` at monotonic time `now`. Paused targets take no token;
        a call over one rate gives back the tokens it took from the others."""
        controls = [c for c in map(self.get, targets_of(request)) if c is not None]
        paused = tuple(c for c in controls if c.state == "paused")
        if paused:
            return ControlCheck(paused=paused)
        taken: list[str] = []
        over: list[Control] = []
        for control in controls:
            if control.per_minute is None:
                continue
            bucket = self._buckets.get(control.target)
            if bucket is None:
                bucket = self._buckets[control.target] = TokenBucket.full(control.per_minute, now)
            if bucket.take(now):
                taken.append(control.target)
            else:
                over.append(control)
        if over:
            self.refund(ControlCheck(taken=tuple(taken)))
            return ControlCheck(over_rate=tuple(over))
        return ControlCheck(taken=tuple(taken))

    def refund(self, check: ControlCheck) -> None:
        """Give back the tokens `check` took (its call was not allowed, so it is not made)."""
        for target in check.taken:
            bucket = self._buckets.get(target)
            if bucket is not None:
                bucket.give_back()


def describe(target: str) -> str:
    """`agent/writer` as `agent 'writer'`."""
    kind, _, name = target.partition("/")
    return f"{kind} {name!r}"


def control_refusal(check: ControlCheck) -> tuple[str, str] | None:
    """(policy, reason) of the deny `check` calls for, or None when it allows the call. The
    reason names the control, who set it and when."""
    for control in check.paused:
        why = f": {control.reason}" if control.reason else ""
        return control.target, (
            f"{describe(control.target)} is paused by {control.set_by} at "
            f"{control.set_at.isoformat(timespec='seconds')}{why}; `podium resume "
            f"{control.target}` lifts it"
        )
    for control in check.over_rate:
        why = f": {control.reason}" if control.reason else ""
        return control.target, (
            f"{describe(control.target)} is throttled to {control.per_minute} calls per minute "
            f"per policy replica by {control.set_by} at "
            f"{control.set_at.isoformat(timespec='seconds')}{why}; this call is over the rate"
        )
    return None
