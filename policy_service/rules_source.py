"""Where the policy service's rules come from: a fixed set, or the applied manifests, reloaded."""

from __future__ import annotations

from typing import Protocol

from manifests.watcher import CatalogWatcher
from podium.core.settings import KafkaSettings
from policy_service.rules import RuleSet, rules_from_resources
from topics.names import TopicNames


class RulesSource(Protocol):
    """Where the rules come from: a snapshot now, kept current between `start` and `stop`."""

    def current(self) -> RuleSet: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class StaticRules:
    """A fixed rule set (tests, benchmarks; a deployment uses `WatchedRules`)."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules

    def current(self) -> RuleSet:
        return self.rules

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class WatchedRules:
    """The rules of the applied manifests (`podium.manifests`), reloaded when they change."""

    def __init__(self, kafka: KafkaSettings, names: TopicNames) -> None:
        self._watcher = CatalogWatcher(kafka, names, service="policy")
        self._version = -1
        self._rules = RuleSet()

    def current(self) -> RuleSet:
        if self._watcher.version != self._version:
            self._version = self._watcher.version
            self._rules = rules_from_resources(self._watcher.catalog.resources())
        return self._rules

    async def start(self) -> None:
        await self._watcher.start()

    async def stop(self) -> None:
        await self._watcher.stop()
